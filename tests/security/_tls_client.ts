/**
 * A TLS client for the security tests against the real `serve` (implicit-TLS ports, trusting a
 * test CA): sends command lines and reads whole replies (their last line). Independent of src/.
 */
import type { TestCa } from "../_helpers/certs.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** A TLS client that reads whole replies (last line). */
export class TlsClient {
  readonly conn: Deno.TlsConn;
  #buf = "";

  private constructor(conn: Deno.TlsConn) {
    this.conn = conn;
  }

  static async open(port: number, ca: TestCa): Promise<TlsClient> {
    const conn = await Deno.connectTls({ hostname: "127.0.0.1", port, caCerts: [ca.caCertPem] });
    return new TlsClient(conn);
  }

  async reply(): Promise<string> {
    const buf = new Uint8Array(4096);
    for (;;) {
      const m = /(?:^|\r\n)(\d{3}) [^\r\n]*\r\n/.exec(this.#buf);
      if (m !== null) {
        const end = m.index + m[0].length;
        const line = this.#buf.slice(0, end).trimEnd().split("\r\n").at(-1) ?? "";
        this.#buf = this.#buf.slice(end);
        return line;
      }
      const n = await this.conn.read(buf);
      if (n === null) return "";
      this.#buf += dec.decode(buf.subarray(0, n));
    }
  }

  async command(line: string): Promise<string> {
    await this.conn.write(enc.encode(`${line}\r\n`));
    return await this.reply();
  }

  close(): void {
    try {
      this.conn.close();
    } catch {
      // closed already
    }
  }
}
