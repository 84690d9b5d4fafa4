/**
 * A minimal SMTP client for tests (Deno.connect, independent of src/): submits one message
 * with exact body bytes (dot-stuffed here) and returns every reply line, so tests can inject
 * mail into `serve` byte for byte and see what was acknowledged.
 */

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface SubmitResult {
  /** Final reply line of each step: greeting, EHLO, MAIL, RCPT…, DATA, end of data. */
  readonly replies: string[];
  /** The reply to the end of DATA, or undefined when DATA was not reached. */
  readonly final?: string | undefined;
}

/** Sends one message; `body` must end with CRLF (or be empty). */
export async function submit(opts: {
  port: number;
  host?: string;
  from: string;
  to: readonly string[];
  body: Uint8Array;
  mailParams?: string;
  /**
   * Gives up after this long (the connection is closed and the call throws): a test that
   * loops over submissions must end even when the server never answers.
   */
  timeoutMs?: number;
}): Promise<SubmitResult> {
  const conn = await Deno.connect({ hostname: opts.host ?? "127.0.0.1", port: opts.port });
  let timedOut = false;
  const timer = opts.timeoutMs === undefined ? undefined : setTimeout(() => {
    timedOut = true;
    conn.close();
  }, opts.timeoutMs);
  let buf = new Uint8Array(0);
  const replies: string[] = [];
  const readReply = async (): Promise<string> => {
    for (;;) {
      const text = dec.decode(buf);
      const lines = text.split("\r\n");
      for (let i = 0; i < lines.length - 1; i++) {
        const l = lines[i] ?? "";
        if (l[3] === " " || l.length === 3) {
          buf = enc.encode(lines.slice(i + 1).join("\r\n"));
          replies.push(l);
          return l;
        }
      }
      const chunk = new Uint8Array(4096);
      const n = await conn.read(chunk).catch((err: Error) => {
        throw timedOut ? new Error(`no reply within ${opts.timeoutMs} ms`) : err;
      });
      if (n === null) throw new Error(`connection closed; replies so far: ${replies.join(" | ")}`);
      const merged = new Uint8Array(buf.length + n);
      merged.set(buf);
      merged.set(chunk.subarray(0, n), buf.length);
      buf = merged;
    }
  };
  const send = async (bytes: Uint8Array) => {
    let off = 0;
    while (off < bytes.length) off += await conn.write(bytes.subarray(off));
  };
  try {
    await readReply();
    await send(enc.encode("EHLO client.test\r\n"));
    await readReply();
    const params = opts.mailParams ? ` ${opts.mailParams}` : "";
    await send(enc.encode(`MAIL FROM:<${opts.from}>${params}\r\n`));
    if (!(await readReply()).startsWith("250")) return { replies };
    let accepted = 0;
    for (const rcpt of opts.to) {
      await send(enc.encode(`RCPT TO:<${rcpt}>\r\n`));
      if ((await readReply()).startsWith("250")) accepted++;
    }
    if (accepted === 0) return { replies };
    await send(enc.encode("DATA\r\n"));
    if (!(await readReply()).startsWith("354")) return { replies };
    await send(dotStuff(opts.body));
    await send(enc.encode(".\r\n"));
    const final = await readReply();
    await send(enc.encode("QUIT\r\n"));
    await readReply().catch(() => "");
    return { replies, final };
  } finally {
    clearTimeout(timer);
    if (!timedOut) conn.close();
  }
}

/** Doubles every line-initial dot (RFC 5321 §4.5.2). */
export function dotStuff(body: Uint8Array): Uint8Array {
  const out: number[] = [];
  let lineStart = true;
  for (const b of body) {
    if (lineStart && b === 46) out.push(46);
    out.push(b);
    lineStart = b === 10;
  }
  return Uint8Array.from(out);
}

/** The queue id in a `250 2.6.0 … as ID` reply. */
export function queueIdOf(reply: string | undefined): string | undefined {
  return reply?.match(/([0-9A-Za-z]{12,})\s*$/)?.[1];
}

/** `submit` for a message the server must take: throws unless the end of data got a 250. */
export async function submitAccepted(opts: Parameters<typeof submit>[0]): Promise<string> {
  const r = await submit(opts);
  if (r.final === undefined || !r.final.startsWith("250 ")) {
    throw new Error(`the message was not accepted: ${r.replies.join(" | ")}`);
  }
  return r.final;
}
