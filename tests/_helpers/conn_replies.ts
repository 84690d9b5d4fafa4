/**
 * One SMTP reply read off a LineReader on our own Conn, and text written to it: for tests that
 * drive a server through src/net (STARTTLS upgrades included) rather than a raw socket.
 */
import type { Conn } from "../../src/net/conn.ts";
import type { LineReader } from "../../src/wire/line_reader.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The next whole reply (its lines joined by "\n"); throws when none comes within `waitMs`. */
export async function readReply(reader: LineReader, waitMs = 5_000): Promise<string> {
  const lines: string[] = [];
  for (;;) {
    const r = await reader.readLine(512, waitMs);
    if (r.kind !== "line") throw new Error(`no reply: ${r.kind}`);
    const line = decoder.decode(r.line);
    lines.push(line);
    if (/^\d{3}(?: |$)/.test(line)) return lines.join("\n");
  }
}

/** Writes `text` and flushes it. */
export async function send(conn: Conn, text: string): Promise<void> {
  await conn.write(encoder.encode(text), { flush: true });
}
