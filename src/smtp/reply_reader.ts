/**
 * Reads one complete (possibly multi-line) SMTP reply from a LineReader under one deadline
 * (client role). Limits: 512 bytes per line (RFC 5321 §4.5.3.1.5), 100 lines. Never throws
 * for peer behaviour: end of stream, timeout and garbage are results.
 */
import type { LineReader } from "../wire/line_reader.ts";
import { type Reply, ReplyParser } from "../wire/reply.ts";
import { TimeoutError } from "../net/conn_types.ts";
import { decodeLine } from "../wire/bytes.ts";

/** Reply line limit including CRLF (RFC 5321 §4.5.3.1.5). */
export const MAX_REPLY_LINE_BYTES = 512;
/** Most lines one reply may have (an EHLO reply with every extension is far below). */
export const MAX_REPLY_LINES = 100;

/** One read reply, or why there is none. After anything but `reply` the connection is unusable. */
export type ReplyReadResult =
  | { readonly kind: "reply"; readonly reply: Reply }
  /** The peer closed (or the connection broke) before a full reply. */
  | { readonly kind: "eof" }
  | { readonly kind: "timeout" }
  /** Framing broke: over-long line, bare CR/LF, bad code, too many lines. */
  | { readonly kind: "invalid"; readonly reason: string };

/** Limits and deadline for one reply. */
export interface ReadReplyOptions {
  readonly timeoutMs: number;
  readonly maxLineBytes?: number;
  readonly maxLines?: number;
}

/** Reads one reply; the whole reply (all its lines) must arrive within `timeoutMs`. */
export async function readReply(
  reader: LineReader,
  opts: ReadReplyOptions,
): Promise<ReplyReadResult> {
  const deadline = Date.now() + opts.timeoutMs;
  const maxLineBytes = opts.maxLineBytes ?? MAX_REPLY_LINE_BYTES;
  const parser = new ReplyParser(opts.maxLines ?? MAX_REPLY_LINES);
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return { kind: "timeout" };
    let line;
    try {
      line = await reader.readLine(maxLineBytes, left);
    } catch (err) {
      if (err instanceof TimeoutError) return { kind: "timeout" };
      // Reset, closed while reading, or a TLS failure: the connection is gone either way.
      return { kind: "eof" };
    }
    switch (line.kind) {
      case "eof":
        return { kind: "eof" };
      case "tooLong":
        return { kind: "invalid", reason: "reply line too long" };
      case "bareNewline":
        return { kind: "invalid", reason: "bare CR or LF in reply" };
      case "line": {
        const result = parser.push(decodeLine(line.line));
        if (result.kind === "done") return { kind: "reply", reply: result.reply };
        if (result.kind === "invalid") return { kind: "invalid", reason: result.reason };
        break;
      }
      default: {
        const never: never = line;
        throw new Error(`unreachable line result ${JSON.stringify(never)}`);
      }
    }
  }
}
