// A minimal ODMR customer that measures the provider alone: EHLO, AUTH CRAM-MD5, ATRN, then
// the SMTP server role answering 250 to everything and discarding bodies (end of data found
// across chunk boundaries; BDAT chunks skipped by their size). It offers CHUNKING and
// PIPELINING like our `fetch`, so the provider keeps several messages in flight (its BDAT
// window); `chunking: false` offers PIPELINING only (one message at a time, DATA and its next
// envelope behind each body, as fetchmail's customers get). TCP_NODELAY is set: with Nagle on, each pipelined reply waits for
// the peer's delayed ACK (~40 ms), which caps any customer at ~22 msg/s on loopback.

import { Buffer } from "node:buffer";
import { createHmac } from "node:crypto";

const enc = new TextEncoder();
const dec = new TextDecoder();
const END_OF_DATA = Buffer.from("\r\n.\r\n");
const CRLF = Buffer.from("\r\n");

/** Options for `runNullCustomer`. */
export interface NullCustomerOptions {
  readonly port: number;
  readonly user: string;
  readonly password: string;
  readonly domain: string;
  /** Whole-session deadline. */
  readonly timeoutMs: number;
  /** Hang up at the first MAIL FROM (bench/atrn_scale.ts times ATRN → first MAIL only). */
  readonly stopAtFirstMail?: boolean;
  /** Offer CHUNKING (default true): the provider's BDAT window; false: DATA, one at a time. */
  readonly chunking?: boolean;
}

/** What the session did. */
export interface NullCustomerResult {
  readonly atrnReply: string;
  readonly messages: number;
  readonly sawQuit: boolean;
  /** Milliseconds from writing ATRN to reading the first MAIL FROM, if one came. */
  readonly firstMailMs?: number;
}

/** Runs one ATRN session against 127.0.0.1:port and counts the messages received. */
export async function runNullCustomer(opts: NullCustomerOptions): Promise<NullCustomerResult> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: opts.port });
  conn.setNoDelay(true);
  const timer = setTimeout(() => conn.close(), opts.timeoutMs);
  const reader = new ChunkReader(conn);
  try {
    await expectReply(reader, "220");
    await write(conn, "EHLO bench-customer.example\r\n");
    await expectReply(reader, "250");
    await write(conn, "AUTH CRAM-MD5\r\n");
    const challenge = Buffer.from((await expectReply(reader, "334")).slice(4), "base64");
    const digest = createHmac("md5", opts.password).update(challenge).digest("hex");
    await write(conn, Buffer.from(`${opts.user} ${digest}`).toString("base64") + "\r\n");
    await expectReply(reader, "235");
    const atrnAt = performance.now();
    await write(conn, `ATRN ${opts.domain}\r\n`);
    const atrnReply = await readReply(reader);
    if (!atrnReply.startsWith("250")) return { atrnReply, messages: 0, sawQuit: false };
    await write(conn, "220 bench-customer.example ESMTP ready\r\n");
    const served = await serveReversed(conn, reader, {
      stopAtFirstMail: opts.stopAtFirstMail ?? false,
      chunking: opts.chunking ?? true,
    });
    const { firstMailAt, ...counts } = served;
    return {
      atrnReply,
      ...counts,
      ...(firstMailAt === undefined ? {} : { firstMailMs: firstMailAt - atrnAt }),
    };
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the deadline or the peer
    }
  }
}

async function serveReversed(
  conn: Deno.Conn,
  reader: ChunkReader,
  opts: { readonly stopAtFirstMail: boolean; readonly chunking: boolean },
): Promise<{ messages: number; sawQuit: boolean; firstMailAt?: number }> {
  let messages = 0;
  let firstMailAt: number | undefined;
  let inData = false;
  /** The BDAT chunk being skipped: bytes still to come, and whether it is the LAST. */
  let bdat: { left: number; readonly isLast: boolean } | undefined;
  // Unparsed bytes: a partial command line, or the tail of a possible end-of-data marker.
  let carry: Buffer = Buffer.alloc(0);
  for (;;) {
    const chunk = await reader.next();
    if (chunk === undefined) return { messages, sawQuit: false, ...at(firstMailAt) };
    let buf = carry.length === 0 ? chunk : Buffer.concat([carry, chunk]);
    carry = Buffer.alloc(0);
    const replies: string[] = [];
    let sawQuit = false;
    while (buf.length > 0 || bdat?.left === 0) {
      if (bdat !== undefined) {
        const n = Math.min(bdat.left, buf.length);
        bdat.left -= n;
        buf = buf.subarray(n);
        if (bdat.left > 0) break;
        replies.push("250 2.0.0 OK");
        if (bdat.isLast) messages++;
        bdat = undefined;
        continue;
      }
      if (inData) {
        const end = buf.indexOf(END_OF_DATA);
        if (end < 0) {
          carry = buf.subarray(Math.max(0, buf.length - (END_OF_DATA.length - 1)));
          break;
        }
        messages++;
        replies.push("250 2.0.0 discarded");
        inData = false;
        buf = buf.subarray(end + END_OF_DATA.length);
        continue;
      }
      const nl = buf.indexOf("\r\n");
      if (nl < 0) {
        carry = buf;
        break;
      }
      const words = dec.decode(buf.subarray(0, nl)).split(" ");
      const verb = words[0]?.toUpperCase() ?? "";
      buf = buf.subarray(nl + 2);
      if (verb === "MAIL" && firstMailAt === undefined) {
        firstMailAt = performance.now();
        if (opts.stopAtFirstMail) return { messages, sawQuit: false, firstMailAt };
      }
      if (verb === "EHLO") {
        const chunking = opts.chunking ? "250-CHUNKING\r\n" : "";
        replies.push(`250-bench-customer.example\r\n${chunking}250-PIPELINING\r\n250 8BITMIME`);
      } else if (verb === "BDAT") {
        // RFC 3030: "BDAT size [LAST]", the size octets follow at once; the reply comes after them.
        const left = Number(words[1]);
        if (!Number.isSafeInteger(left) || left < 0) {
          throw new Error(`bad BDAT line from the provider: ${words.join(" ")}`);
        }
        bdat = { left, isLast: words[2]?.toUpperCase() === "LAST" };
      } else if (verb === "DATA") {
        replies.push("354 go ahead");
        inData = true;
        // The DATA line's CRLF starts the body, so an empty body is just ".CRLF".
        buf = Buffer.concat([CRLF, buf]);
      } else if (verb === "QUIT") {
        replies.push("221 2.0.0 bye");
        sawQuit = true;
        break;
      } else replies.push("250 2.0.0 OK");
    }
    if (replies.length > 0) await write(conn, replies.join("\r\n") + "\r\n");
    if (sawQuit) return { messages, sawQuit, ...at(firstMailAt) };
  }
}

function at(firstMailAt: number | undefined): { firstMailAt?: number } {
  return firstMailAt === undefined ? {} : { firstMailAt };
}

class ChunkReader {
  readonly #conn: Deno.Conn;
  #pending: Buffer = Buffer.alloc(0);

  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  /** Next bytes: what is left over from line reading first, then the socket. */
  async next(): Promise<Buffer | undefined> {
    if (this.#pending.length > 0) {
      const b = this.#pending;
      this.#pending = Buffer.alloc(0);
      return b;
    }
    const chunk = new Uint8Array(65536);
    const n = await this.#conn.read(chunk);
    return n === null ? undefined : Buffer.from(chunk.buffer, 0, n);
  }

  /** One CRLF-terminated line (ASCII, control phase only). */
  async line(): Promise<string> {
    for (let i = 0; i < 1000; i++) {
      const nl = this.#pending.indexOf("\r\n");
      if (nl >= 0) {
        const line = dec.decode(this.#pending.subarray(0, nl));
        this.#pending = this.#pending.subarray(nl + 2);
        return line;
      }
      const chunk = new Uint8Array(65536);
      const n = await this.#conn.read(chunk);
      if (n === null) throw new Error("provider closed the connection");
      this.#pending = Buffer.concat([this.#pending, chunk.subarray(0, n)]);
    }
    throw new Error("reply line too long");
  }
}

async function readReply(reader: ChunkReader): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const line = await reader.line();
    if (line.length < 4 || line[3] !== "-") return line;
  }
  throw new Error("reply has too many lines");
}

async function expectReply(reader: ChunkReader, code: string): Promise<string> {
  const reply = await readReply(reader);
  if (!reply.startsWith(code)) throw new Error(`expected ${code}, got "${reply}"`);
  return reply;
}

async function write(conn: Deno.Conn, text: string): Promise<void> {
  const bytes = enc.encode(text);
  let off = 0;
  while (off < bytes.length) off += await conn.write(bytes.subarray(off));
}
