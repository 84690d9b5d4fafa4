// A null MX for bench/ingest_ceiling.ts: answers every command (PIPELINING only, no CHUNKING),
// discards every body, stores nothing, in the process that starts it. Kept as cheap as it can be
// in Deno (one read buffer per connection, reused; the end of data found by jumping from "." to
// "."), so that its rate says what the sender can push, not what this server costs.

const CR = 13;
const LF = 10;
const DOT = 46;
const READ_BYTES = 256 * 1024;
/** Longest command line kept; longer ones are answered all the same (a null server). */
const MAX_LINE_CHARS = 1000;

const enc = new TextEncoder();
const dec = new TextDecoder("latin1");

/**
 * Finds the end of a DATA body (CR LF "." CR LF) across reads: how many octets of the marker
 * the reads so far ended with (3 or 4 once "." was seen), and their last two octets.
 */
class EndOfData {
  #matched = 2; // the DATA line's own CRLF starts the body
  #prev = [CR, LF];

  /** Offset in `buf` just past the marker, or -1 when the body goes on past `end`. */
  find(buf: Uint8Array, start: number, end: number): number {
    let i = start;
    // A marker begun in the previous read: one octet at a time, at most four.
    while (this.#matched > 2 && i < end) {
      const want = this.#matched === 3 ? CR : LF;
      if (buf[i] !== want) {
        this.#matched = 0;
        break;
      }
      i++;
      if (++this.#matched === 5) return i;
    }
    if (this.#matched > 2) return this.#remember(buf, start, end);
    this.#matched = 0;
    for (;;) {
      const dot = buf.indexOf(DOT, i);
      if (dot < 0 || dot >= end) break;
      const b2 = dot - 2 >= start ? buf[dot - 2] : this.#prev[dot - start];
      const b1 = dot - 1 >= start ? buf[dot - 1] : this.#prev[dot - start + 1];
      if (b2 === CR && b1 === LF) {
        if (dot + 2 < end) {
          if (buf[dot + 1] === CR && buf[dot + 2] === LF) return dot + 3;
        } else if (dot + 1 === end || buf[dot + 1] === CR) {
          this.#matched = dot + 1 === end ? 3 : 4;
          break;
        }
      }
      i = dot + 1;
    }
    return this.#remember(buf, start, end);
  }

  /** Keeps the last two octets of the stream so far; the body goes on. */
  #remember(buf: Uint8Array, start: number, end: number): number {
    if (end - start >= 2) this.#prev = [buf[end - 2] ?? 0, buf[end - 1] ?? 0];
    else if (end > start) this.#prev = [this.#prev[1] ?? 0, buf[start] ?? 0];
    return -1;
  }
}

async function serveOne(conn: Deno.TcpConn): Promise<void> {
  conn.setNoDelay(true);
  const buf = new Uint8Array(READ_BYTES);
  let body: EndOfData | undefined;
  let line = "";
  await conn.write(enc.encode("220 null-mx.example ESMTP\r\n"));
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) return;
    const replies: string[] = [];
    let i = 0;
    let quit = false;
    while (i < n && !quit) {
      if (body !== undefined) {
        const end = body.find(buf, i, n);
        if (end < 0) break;
        body = undefined;
        replies.push("250 2.0.0 discarded");
        i = end;
        continue;
      }
      const lf = buf.indexOf(LF, i);
      if (lf < 0 || lf >= n) {
        line = (line + dec.decode(buf.subarray(i, n))).slice(0, MAX_LINE_CHARS);
        break;
      }
      const verb = (line + dec.decode(buf.subarray(i, Math.min(lf, i + 4)))).slice(0, 4)
        .toUpperCase();
      line = "";
      i = lf + 1;
      if (verb === "EHLO") replies.push("250-null-mx.example\r\n250-PIPELINING\r\n250 8BITMIME");
      else if (verb === "DATA") {
        replies.push("354 go ahead");
        body = new EndOfData();
      } else if (verb === "QUIT") {
        replies.push("221 2.0.0 bye");
        quit = true;
      } else replies.push("250 2.0.0 OK");
    }
    if (replies.length > 0) await conn.write(enc.encode(replies.join("\r\n") + "\r\n"));
    if (quit) return;
  }
}

/** Listens on 127.0.0.1 (port 0) until `close()`. */
export function startNullMx(): { readonly port: number; close(): void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  (async () => {
    for await (const conn of listener) {
      serveOne(conn).catch(() => {}).finally(() => {
        try {
          conn.close();
        } catch {
          // closed already
        }
      });
    }
  })().catch(() => {});
  return { port: (listener.addr as Deno.NetAddr).port, close: () => listener.close() };
}
