/**
 * Reading a password for the `user` command: the first line of stdin, or a no-echo prompt on
 * the terminal (raw mode). The typed bytes are overwritten once decoded; nothing is echoed.
 */
import type { CliIo } from "./io.ts";

/** Reads a password from the terminal without echo; null when the user aborts (Ctrl-C/D). */
export type PasswordPrompt = (prompt: string) => Promise<string | null>;

/**
 * The password for `user add|passwd|test`: the first line of stdin with `--password-stdin`,
 * otherwise typed twice at a no-echo prompt (once when not `isRepeated`, for `user test`).
 */
export async function readPassword(
  isPasswordStdin: boolean,
  io: CliIo,
  opts: { prompt: PasswordPrompt | undefined; isRepeated: boolean },
): Promise<{ ok: true; password: string } | { ok: false; message: string }> {
  const prompt = opts.prompt;
  if (isPasswordStdin) {
    const line = await io.readStdinLine();
    if (line === null || line === "") {
      return { ok: false, message: "Empty password: --password-stdin read an empty first line" };
    }
    return { ok: true, password: line };
  }
  if (prompt === undefined && !io.isTty) {
    return {
      ok: false,
      message: "Cannot prompt for a password: stdin is not a terminal; use --password-stdin",
    };
  }
  const ask = prompt ?? ((text: string) => promptWithoutEcho(text, io));
  const first = await ask("Password: ");
  if (first === null) return { ok: false, message: "Password entry aborted" };
  if (first === "") return { ok: false, message: "Empty password: a password is required" };
  if (!opts.isRepeated) return { ok: true, password: first };
  const second = await ask("Repeat password: ");
  if (second !== first) return { ok: false, message: "Passwords do not match" };
  return { ok: true, password: first };
}

/**
 * What a read took past the end of the line it answered (both lines typed ahead, or pasted):
 * the start of the next answer. Overwritten once taken.
 */
let typedAhead = new Uint8Array(0);

/** Reads one line from the terminal in raw mode, so nothing is echoed. */
async function promptWithoutEcho(text: string, io: CliIo): Promise<string | null> {
  io.stderr(text);
  const bytes: number[] = [];
  const chunk = new Uint8Array(64);
  Deno.stdin.setRaw(true);
  try {
    for (;;) {
      let input = typedAhead;
      typedAhead = new Uint8Array(0);
      if (input.length === 0) {
        const n = await Deno.stdin.read(chunk);
        if (n === null) return null;
        input = chunk.subarray(0, n);
      }
      for (let i = 0; i < input.length; i++) {
        const b = input[i] as number;
        if (b === 0x0d || b === 0x0a) {
          // A CR LF pair ends one line, not two.
          const next = b === 0x0d && input[i + 1] === 0x0a ? i + 2 : i + 1;
          typedAhead = input.slice(next);
          input.fill(0);
          return new TextDecoder().decode(Uint8Array.from(bytes));
        }
        if (b === 0x03 || b === 0x04) return null; // Ctrl-C, Ctrl-D
        if (b === 0x7f || b === 0x08) popCharacter(bytes);
        else bytes.push(b);
      }
      input.fill(0);
    }
  } finally {
    Deno.stdin.setRaw(false);
    bytes.fill(0);
    chunk.fill(0);
    io.stderr("\n");
  }
}

/** Backspace removes one UTF-8 character: its continuation bytes, then its lead byte. */
function popCharacter(bytes: number[]): void {
  while (bytes.length > 0 && ((bytes[bytes.length - 1] ?? 0) & 0xc0) === 0x80) bytes.pop();
  bytes.pop();
}
