// Postfix's smtp-source as the load generator: S parallel sessions, one message per
// connection (no -d, as mail arrives at an MX), M messages of L payload bytes in total.

import { runCommand } from "./_proc.ts";

/** Path of the smtp-source binary (Debian's postfix package). */
export const SMTP_SOURCE = "/usr/sbin/smtp-source";

/** One ingest load: `sessions` in parallel, `messages` in total, `bytes` of payload each. */
export interface SourceShape {
  readonly sessions: number;
  readonly messages: number;
  readonly bytes: number;
}

/** Result of one smtp-source run. */
export interface SourceResult {
  readonly seconds: number;
  readonly msgPerSec: number;
  /** Payload MB (10^6 bytes) per second. */
  readonly mbPerSec: number;
}

/** smtp-source's arguments for `shape` into 127.0.0.1:port, one recipient `rcpt`. */
export function sourceArgs(port: number, shape: SourceShape, rcpt: string): string[] {
  return [
    "-s",
    String(shape.sessions),
    "-m",
    String(shape.messages),
    "-l",
    String(shape.bytes),
    "-f",
    "sender@source.example",
    "-t",
    rcpt,
    "-M",
    "bench.localdomain",
    `127.0.0.1:${port}`,
  ];
}

/** Sends `shape` to 127.0.0.1:port and times it; throws if smtp-source fails or times out. */
export async function runSource(
  port: number,
  shape: SourceShape,
  opts: { rcpt: string; timeoutMs: number },
): Promise<SourceResult> {
  const r = await runCommand(SMTP_SOURCE, sourceArgs(port, shape, opts.rcpt), opts.timeoutMs);
  if (r.code !== 0) {
    throw new Error(`smtp-source exited ${r.code}: ${r.output.split("\n").slice(-1)[0] ?? ""}`);
  }
  const seconds = r.ms / 1000;
  return {
    seconds,
    msgPerSec: shape.messages / seconds,
    mbPerSec: (shape.messages * shape.bytes) / 1e6 / seconds,
  };
}
