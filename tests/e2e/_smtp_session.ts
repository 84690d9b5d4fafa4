/**
 * A raw SMTP client session for e2e tests that sends many messages on one connection and
 * records each acknowledgement the moment its `250` arrives (the kill -9 test needs exactly
 * that: what was acknowledged before the crash). Independent of src/.
 */
import { match } from "node:assert/strict";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One open SMTP session. */
export class SmtpSession {
  readonly #conn: Deno.TcpConn;
  #buf = "";

  private constructor(conn: Deno.TcpConn) {
    this.#conn = conn;
  }

  /** Connects and reads the greeting. */
  static async open(
    port: number,
    host = "127.0.0.1",
  ): Promise<{ session: SmtpSession; greeting: string }> {
    const session = new SmtpSession(await Deno.connect({ hostname: host, port }));
    const greeting = await session.readReply();
    return { session, greeting };
  }

  /** Reads one (possibly multi-line) reply and returns its last line. */
  async readReply(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.#buf.split("\r\n");
      for (let i = 0; i < lines.length - 1; i++) {
        const l = lines[i] as string;
        if (l.length === 3 || l[3] === " ") {
          this.#buf = lines.slice(i + 1).join("\r\n");
          return l;
        }
      }
      if (Date.now() > deadline) throw new Error(`no reply within ${timeoutMs} ms`);
      const chunk = new Uint8Array(4096);
      const n = await this.#conn.read(chunk);
      if (n === null) throw new Error("connection closed by the server");
      this.#buf += dec.decode(chunk.subarray(0, n));
    }
  }

  async send(text: string): Promise<void> {
    const bytes = enc.encode(text);
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** Sends a command line and returns the reply's last line. */
  async command(line: string): Promise<string> {
    await this.send(`${line}\r\n`);
    return await this.readReply();
  }

  /**
   * A dialogue as a table: sends each command in turn and asserts its reply's last line
   * matches (the failure names the command).
   */
  async expectReplies(
    steps: readonly (readonly [command: string, reply: RegExp])[],
  ): Promise<void> {
    for (const [command, reply] of steps) {
      const got = await this.command(command);
      match(got, reply, `${command} -> ${got} (wanted ${reply})`);
    }
  }

  /** One transaction; the reply to the end of DATA (or the first refusal). */
  async sendMessage(from: string, to: string, body: string): Promise<string> {
    for (const line of [`MAIL FROM:<${from}>`, `RCPT TO:<${to}>`]) {
      const r = await this.command(line);
      if (!r.startsWith("250")) return r;
    }
    const r = await this.command("DATA");
    if (!r.startsWith("354")) return r;
    await this.send(`${body}.\r\n`);
    return await this.readReply();
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Already closed by the server.
    }
  }

  /** `using session = …` closes it at the end of the block. */
  [Symbol.dispose](): void {
    this.close();
  }
}
