/**
 * Postfix's `smtp-sink` as a receiving MTA for outbound tests: started on HOST:PORT, found ready
 * by connecting (bounded, no sleeps beyond a short poll), stopped by its PID. With `-d` it
 * writes each transaction to a file in `dir`, so a test can count what arrived.
 */
import { findTool } from "./tools.ts";

/** A running smtp-sink. */
export interface SmtpSinkProcess {
  /** Directory holding one dump file per transaction. */
  readonly dir: string;
  /** Number of transactions dumped so far. */
  count(): Promise<number>;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const READY_DEADLINE_MS = 10_000;

/** Starts smtp-sink on `host:port`. */
export async function startSmtpSink(host: string, port: number): Promise<SmtpSinkProcess> {
  const bin = await findTool("smtp-sink");
  if (bin === undefined) throw new Error("smtp-sink not installed");
  const dir = await Deno.makeTempDir({ prefix: "odmr-smtp-sink-" });
  await Deno.chmod(dir, 0o777);
  const args = ["-d", `${dir}/%Y%m%d%H/%M.`, `${host}:${port}`, "64"];
  // As root, smtp-sink drops to an unprivileged user after binding; it must still write dumps.
  if (Deno.uid() === 0) args.unshift("-u", "nobody");
  const child = new Deno.Command(bin, { args, stdout: "null", stderr: "piped" }).spawn();
  let hasExited = false;
  const status = child.status.then((s) => {
    hasExited = true;
    return s;
  });
  const stderr = new Response(child.stderr).text();
  const stop = async () => {
    if (!hasExited) {
      try {
        child.kill("SIGTERM");
      } catch {
        // Exited meanwhile.
      }
    }
    await status;
    await stderr;
    await Deno.remove(dir, { recursive: true });
  };
  const count = async () => {
    let n = 0;
    for await (const e of walkFiles(dir)) if (e) n++;
    return n;
  };
  const deadline = Date.now() + READY_DEADLINE_MS;
  while (Date.now() < deadline && !hasExited) {
    try {
      const c = await Deno.connect({ hostname: host, port });
      c.close();
      return { dir, count, stop, [Symbol.asyncDispose]: stop };
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  await stop();
  throw new Error(`smtp-sink did not listen on ${host}:${port}: ${await stderr}`);
}

async function* walkFiles(dir: string): AsyncGenerator<boolean> {
  for await (const e of Deno.readDir(dir)) {
    if (e.isDirectory) yield* walkFiles(`${dir}/${e.name}`);
    else yield e.isFile;
  }
}
