/**
 * The real CliIo for `user` and `queue`: process stdout/stderr (bytes go straight to the stdout
 * file), stdin one line at a time (bytes kept between calls, a line at most 64 KiB), and
 * `data_dir` from the loaded config.
 */
import type { CliIo, StorageChoice } from "./io.ts";

/** Longest stdin line accepted (a password or a "yes"); longer input is an error. */
const MAX_STDIN_LINE_BYTES = 64 * 1024;

/** Builds the CliIo of this process. */
export function createCliIo(
  dataDir: string,
  out: { stdout(text: string): void; stderr(text: string): void },
  storage?: StorageChoice,
): CliIo {
  let buffered = new Uint8Array(0);
  let isEof = false;
  const decoder = new TextDecoder();
  return {
    stdout: out.stdout,
    stderr: out.stderr,
    async writeStdout(bytes: Uint8Array): Promise<void> {
      let offset = 0;
      while (offset < bytes.length) offset += await Deno.stdout.write(bytes.subarray(offset));
    },
    isTty: Deno.stdin.isTerminal(),
    dataDir,
    ...(storage === undefined ? {} : { storage }),
    async readStdinLine(): Promise<string | null> {
      for (;;) {
        const lf = buffered.indexOf(10);
        if (lf >= 0) {
          const line = buffered.subarray(0, lf);
          buffered = buffered.slice(lf + 1);
          return decoder.decode(stripCr(line));
        }
        if (isEof) {
          if (buffered.length === 0) return null;
          const last = buffered;
          buffered = new Uint8Array(0);
          return decoder.decode(stripCr(last));
        }
        if (buffered.length > MAX_STDIN_LINE_BYTES) {
          throw new Error(`stdin line longer than ${MAX_STDIN_LINE_BYTES} bytes`);
        }
        const chunk = new Uint8Array(4096);
        const n = await Deno.stdin.read(chunk);
        if (n === null) {
          isEof = true;
          continue;
        }
        const merged = new Uint8Array(buffered.length + n);
        merged.set(buffered);
        merged.set(chunk.subarray(0, n), buffered.length);
        buffered = merged;
      }
    },
  };
}

function stripCr(line: Uint8Array): Uint8Array {
  return line.length > 0 && line[line.length - 1] === 13 ? line.subarray(0, -1) : line;
}
