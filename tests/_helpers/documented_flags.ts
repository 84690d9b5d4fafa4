/**
 * The Deno permission flags the project documents, read at test time rather than copied: the
 * README's run instructions (its `main.ts serve` and `main.ts fetch` command blocks) and the
 * `compile` task of deno.json.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { REPO_ROOT } from "./server_process.ts";

/** The example paths of the README's run instructions. */
export const README_PATHS = {
  config: "/etc/odmr-relay",
  data: "/var/lib/odmr-relay",
  mailbox: "/home/alice/Maildir",
} as const;

/** The --allow-* flags of a shell command in a README code block that runs `main.ts COMMAND`. */
export async function readmeFlags(command: "serve" | "fetch"): Promise<string[]> {
  const readme = await Deno.readTextFile(`${REPO_ROOT}README.md`);
  const blocks = [...readme.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1] as string);
  const runs = blocks.map((b) => b.replaceAll("\\\n", " ")).flatMap((b) => b.split("\n"))
    .filter((l) => /^\s*deno run /.test(l) && l.includes(`main.ts ${command}`));
  assertEquals(runs.length >= 1, true, `the README shows how to run ${command} with deno`);
  return (runs[0] as string).split(/\s+/).filter((w) => w.startsWith("--allow-"));
}

/** The --allow-* flags the compiled binary is built with. */
export async function compileFlags(): Promise<string[]> {
  const tasks = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)).tasks;
  const words = String(tasks.compile).split(/\s+/);
  assertEquals(words.slice(0, 2), ["deno", "compile"]);
  return words.filter((w) => w.startsWith("--allow-"));
}

/** Replaces the README's example paths with the test's. */
export function mapPaths(flags: string[], map: Record<string, string>): string[] {
  return flags.map((f) => {
    let out = f;
    for (const [from, to] of Object.entries(map)) out = out.replaceAll(from, to);
    return out;
  });
}
