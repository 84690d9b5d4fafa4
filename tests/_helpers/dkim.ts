/**
 * The independent DKIM verifier of the tests: python3-dkim (dkimpy, the library behind
 * `dkimverify`) run through `dkim_verify.py`, with the public key from a real DNS server or
 * given directly. The Python interpreter is the one `dkimverify` itself runs with.
 */
import { findTool } from "./tools.ts";

const SCRIPT = new URL("./dkim_verify.py", import.meta.url).pathname;

/** The interpreter that has the `dkim` module: the one on dkimverify's `#!` line. */
export async function dkimPython(): Promise<string> {
  const tool = await findTool("dkimverify");
  if (tool === undefined) throw new Error("dkimverify (python3-dkim) not installed");
  const first = (await Deno.readTextFile(tool)).split("\n", 1)[0] ?? "";
  const interpreter = first.startsWith("#!") ? first.slice(2).trim().split(/\s+/)[0] : undefined;
  if (interpreter === undefined || interpreter === "") {
    throw new Error(`cannot find the interpreter of ${tool}`);
  }
  return interpreter;
}

/** Where the verifier gets the key: a DNS server (`HOST:PORT`) or TXT texts by name. */
export type KeySource = { readonly dns: string } | {
  readonly txt: Readonly<Record<string, string>>;
};

/** Runs dkimpy on `message`, checking signature number `index` (0 = topmost). */
export async function verifyDkim(
  message: Uint8Array,
  source: KeySource,
  index = 0,
): Promise<{ ok: boolean; output: string }> {
  const args = [SCRIPT, "--index", String(index)];
  if ("dns" in source) {
    args.push("--dns", source.dns);
  } else {
    for (const [name, text] of Object.entries(source.txt)) args.push("--txt", `${name}=${text}`);
  }
  return await runPython(args, message);
}

/** Runs the interpreter of dkimpy with `args` and `input` on stdin. */
export async function runPython(
  args: readonly string[],
  input: Uint8Array,
): Promise<{ ok: boolean; output: string }> {
  const child = new Deno.Command(await dkimPython(), {
    args: [...args],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writer = child.stdin.getWriter();
  await writer.write(input);
  await writer.close();
  const out = await child.output();
  const decoder = new TextDecoder();
  return {
    ok: out.code === 0,
    output: (decoder.decode(out.stdout) + decoder.decode(out.stderr)).trim(),
  };
}

/** Verifies many signed messages in one verifier process; one result per item, in order. */
export async function verifyDkimBatch(
  items: readonly { message: Uint8Array; index: number }[],
  source: KeySource,
): Promise<{ ok: boolean; output: string }[]> {
  const args = [SCRIPT, "--batch"];
  if ("dns" in source) {
    args.push("--dns", source.dns);
  } else {
    for (const [name, text] of Object.entries(source.txt)) args.push("--txt", `${name}=${text}`);
  }
  const input = JSON.stringify(items.map((i) => ({ message: base64(i.message), index: i.index })));
  const res = await runPython(args, new TextEncoder().encode(input));
  if (!res.ok) throw new Error(`dkim_verify.py --batch failed: ${res.output}`);
  return JSON.parse(res.output) as { ok: boolean; output: string }[];
}

function base64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}
