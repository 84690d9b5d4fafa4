// A lone sender's wait for the 250 (issue 13 item 4): one client, messages strictly one after
// the other, the time from writing the final "." to reading the 250 that follows it. Either a
// new connection per message (as mail arrives at an MX) or all messages over one connection.

const enc = new TextEncoder();
const dec = new TextDecoder();

/** How the lone sender sends. */
export interface LatencyShape {
  readonly messages: number;
  readonly bytes: number;
  /** True: connect, EHLO … QUIT for each message; false: one session, RSET-free MAIL loops. */
  readonly perConnection: boolean;
}

/** What one lone sender measured. */
export interface LatencyResult {
  /** Median and 99th percentile of "." → 250, in ms. */
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** Messages per second over the whole run (connection set-up included). */
  readonly msgPerSec: number;
}

/** A reply reader over one connection: returns each complete (last) reply line. */
class Replies {
  readonly #conn: Deno.Conn;
  readonly #buf = new Uint8Array(16 * 1024);
  #text = "";

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async next(): Promise<string> {
    for (;;) {
      let end = this.#text.indexOf("\r\n");
      while (end >= 0) {
        const line = this.#text.slice(0, end);
        this.#text = this.#text.slice(end + 2);
        if (line[3] !== "-") return line;
        end = this.#text.indexOf("\r\n");
      }
      const n = await this.#conn.read(this.#buf);
      if (n === null) throw new Error("connection closed while waiting for a reply");
      this.#text += dec.decode(this.#buf.subarray(0, n));
    }
  }
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** A body of about `bytes` octets in 78-character lines, ending in CRLF "." CRLF. */
function dataBytes(bytes: number): Uint8Array {
  const line = "x".repeat(78) + "\r\n";
  const lines = Math.max(1, Math.ceil(bytes / line.length));
  return enc.encode("Subject: latency\r\n\r\n" + line.repeat(lines) + ".\r\n");
}

async function expect(replies: Replies, code: string, what: string): Promise<void> {
  const line = await replies.next();
  if (!line.startsWith(code)) throw new Error(`${what}: expected ${code}, got "${line}"`);
}

/** One message inside an open session; returns ms from the "." to the 250. */
async function oneMessage(
  conn: Deno.Conn,
  replies: Replies,
  opts: { rcpt: string; data: Uint8Array },
): Promise<number> {
  await writeAll(conn, enc.encode(`MAIL FROM:<sender@source.example>\r\n`));
  await expect(replies, "250", "MAIL");
  await writeAll(conn, enc.encode(`RCPT TO:<${opts.rcpt}>\r\n`));
  await expect(replies, "250", "RCPT");
  await writeAll(conn, enc.encode("DATA\r\n"));
  await expect(replies, "354", "DATA");
  // The body without its final ".", then the "." alone: the clock starts at the end of data.
  const dot = opts.data.length - 3;
  await writeAll(conn, opts.data.subarray(0, dot));
  const t0 = performance.now();
  await writeAll(conn, opts.data.subarray(dot));
  await expect(replies, "250", "end of data");
  return performance.now() - t0;
}

async function openSession(port: number): Promise<{ conn: Deno.Conn; replies: Replies }> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  conn.setNoDelay(true);
  const replies = new Replies(conn);
  await expect(replies, "220", "greeting");
  await writeAll(conn, enc.encode("EHLO bench.localdomain\r\n"));
  await expect(replies, "250", "EHLO");
  return { conn, replies };
}

async function closeSession(s: { conn: Deno.Conn; replies: Replies }): Promise<void> {
  try {
    await writeAll(s.conn, enc.encode("QUIT\r\n"));
    await s.replies.next();
  } finally {
    s.conn.close();
  }
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? NaN;
}

/** Sends `shape.messages` messages to 127.0.0.1:port one after the other and times each. */
export async function runLatency(
  port: number,
  shape: LatencyShape,
  opts: { rcpt: string },
): Promise<LatencyResult> {
  const data = dataBytes(shape.bytes);
  const waits: number[] = [];
  const start = performance.now();
  let session = shape.perConnection ? undefined : await openSession(port);
  try {
    for (let i = 0; i < shape.messages; i++) {
      const s = session ?? await openSession(port);
      try {
        waits.push(await oneMessage(s.conn, s.replies, { rcpt: opts.rcpt, data }));
      } finally {
        if (shape.perConnection) await closeSession(s);
      }
    }
  } finally {
    if (session !== undefined) await closeSession(session);
    session = undefined;
  }
  const seconds = (performance.now() - start) / 1000;
  waits.sort((a, b) => a - b);
  return {
    p50Ms: percentile(waits, 0.5),
    p99Ms: percentile(waits, 0.99),
    msgPerSec: shape.messages / seconds,
  };
}
