// MX ingest, plain or over STARTTLS (issue 13), with serve's CPU time per message: our `serve`
// (with a certificate for `starttls`), one 4 KB message per connection (as mail reaches an MX),
// S sessions at once. Not part of `deno task bench`: run it alone to compare two builds, e.g.
//   deno run -A bench/ingest_cpu.ts starttls 1000 1 10
// (plain or starttls, messages per shape, then the session counts). CPU time per message is
// steadier than msg/s on a shared machine. The clients use Deno.startTls with a test CA; their
// cost is in this process, not in serve's.

import { makeTestCa } from "../tests/_helpers/certs.ts";
import { cpuMs } from "./_proc.ts";
import { Serve } from "./_serve.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const DOMAIN = "bench.example";
const BODY = enc.encode(
  "Subject: bench\r\n\r\n" + ("x".repeat(78) + "\r\n").repeat(51) + ".\r\n",
);

/** Reads replies one at a time from a connection (several may come in one read). */
class Replies {
  #text = "";
  constructor(readonly buf: Uint8Array) {}

  /** The next reply's code (its last line `NNN text`). */
  async next(conn: Deno.Conn): Promise<number> {
    for (;;) {
      const m = /^(?:\d{3}-[^\r\n]*\r\n)*(\d{3}) [^\r\n]*\r\n/.exec(this.#text);
      if (m) {
        this.#text = this.#text.slice(m[0].length);
        return Number(m[1]);
      }
      const n = await conn.read(this.buf);
      if (n === null) throw new Error(`connection closed after ${JSON.stringify(this.#text)}`);
      this.#text += dec.decode(this.buf.subarray(0, n));
    }
  }
}

async function expect(conn: Deno.Conn, r: Replies, code: number, what: string) {
  const got = await r.next(conn);
  if (got !== code) throw new Error(`${what}: expected ${code}, got ${got}`);
}

/** One message over one connection with STARTTLS. */
async function sendOne(port: number, caPem: string | undefined, buf: Uint8Array) {
  const r = new Replies(buf);
  const tcp = await Deno.connect({ hostname: "127.0.0.1", port });
  // Without it the client's small TLS writes wait for delayed ACKs (~40 ms per message).
  tcp.setNoDelay(true);
  let conn: Deno.Conn = tcp;
  try {
    await expect(conn, r, 220, "greeting");
    await conn.write(enc.encode("EHLO client.test\r\n"));
    await expect(conn, r, 250, "EHLO");
    if (caPem !== undefined) {
      await conn.write(enc.encode("STARTTLS\r\n"));
      await expect(conn, r, 220, "STARTTLS");
      conn = await Deno.startTls(tcp, { hostname: "localhost", caCerts: [caPem] });
      await conn.write(enc.encode("EHLO client.test\r\n"));
      await expect(conn, r, 250, "EHLO after TLS");
    }
    await conn.write(enc.encode(`MAIL FROM:<a@src.test>\r\nRCPT TO:<u@${DOMAIN}>\r\nDATA\r\n`));
    await expect(conn, r, 250, "MAIL");
    await expect(conn, r, 250, "RCPT");
    await expect(conn, r, 354, "DATA");
    await conn.write(BODY);
    await expect(conn, r, 250, "end of data");
    await conn.write(enc.encode("QUIT\r\n"));
    await expect(conn, r, 221, "QUIT");
  } finally {
    conn.close();
  }
}

/** `total` messages by `sessions` parallel clients; msg/s. */
async function shape(port: number, caPem: string | undefined, total: number, sessions: number) {
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: sessions }, async () => {
    const buf = new Uint8Array(16 * 1024);
    while (next < total) {
      next++;
      await sendOne(port, caPem, buf);
    }
  }));
  return total / ((performance.now() - started) / 1000);
}

const [mode, countArg, ...sessionArgs] = Deno.args;
if (mode !== "plain" && mode !== "starttls") throw new Error("first argument: plain or starttls");
const total = Number(countArg ?? 1000);
const shapes = sessionArgs.length > 0 ? sessionArgs.map(Number) : [1, 10];
const ca = await makeTestCa();
if (ca === undefined) throw new Error("openssl is needed");
const caPem = mode === "starttls" ? ca.caCertPem : undefined;
const dir = await Deno.makeTempDir({ prefix: "odmr-bench-ingest-cpu-" });
const serve = await Serve.start({
  dir,
  domain: DOMAIN,
  ...(mode === "starttls" ? { tls: { cert: ca.certPath, key: ca.keyPath } } : {}),
});
try {
  // Warm-up: the first handshakes of a process pay one-time set-ups on both sides.
  await shape(serve.smtpPort, caPem, 50, 2);
  for (const s of shapes) {
    const cpu0 = await cpuMs(serve.pid);
    const rate = await shape(serve.smtpPort, caPem, total, s);
    const perMessage = ((await cpuMs(serve.pid)) - cpu0) / total;
    // deno-lint-ignore no-console -- a bench prints its figures
    console.log(
      `${mode} ingest s${s} x ${total} x 4 KB: ${rate.toFixed(0)} msg/s, ` +
        `serve CPU ${perMessage.toFixed(2)} ms/msg`,
    );
  }
} finally {
  await serve.stop();
  await Deno.remove(dir, { recursive: true });
  await ca.cleanup();
}
