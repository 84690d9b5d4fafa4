/**
 * Harness for SmtpReceiver session tests: a receiver over an in-memory Conn pair with a
 * FakeSink, and a client that sends raw bytes and reads whole replies.
 */
import { connPair } from "../_helpers/conn_pair.ts";
import type { MemoryConn } from "../_helpers/conn_pair.ts";
import { FakeSink } from "../_helpers/fake_sink.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import type { Logger } from "../../src/observe/log.ts";
import { SmtpReceiver } from "../../src/smtp/receiver.ts";
import type { ReceiverOptions, ReceiverOutcome } from "../../src/smtp/receiver.ts";
import type { MessageSink } from "../../src/smtp/sink.ts";

/** Small limits so every limit can be tested at N and N+1. */
export const TEST_OPTIONS: ReceiverOptions = {
  hostname: "mx.test",
  maxMessageBytes: 10_000,
  maxRecipients: 3,
  commandTimeoutMs: 2_000,
  maxErrors: 3,
  addTraceHeader: false,
};

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The client end: raw writes, whole-reply reads. */
export class Client {
  readonly conn: MemoryConn;
  #buf = "";

  constructor(conn: MemoryConn) {
    this.conn = conn;
  }

  /** Sends text (CRLF must be written out) or bytes as one chunk. */
  async send(data: string | Uint8Array): Promise<void> {
    await this.conn.write(typeof data === "string" ? encoder.encode(data) : data);
  }

  /** Reads one whole reply; multi-line replies are joined with "\n". */
  async reply(timeoutMs = 2_000): Promise<string> {
    const lines: string[] = [];
    for (;;) {
      const nl = this.#buf.indexOf("\r\n");
      if (nl >= 0) {
        const line = this.#buf.slice(0, nl);
        this.#buf = this.#buf.slice(nl + 2);
        lines.push(line);
        if (/^\d{3}(?: |$)/.test(line)) return lines.join("\n");
        continue;
      }
      const chunk = await this.conn.read(timeoutMs);
      if (chunk === null) {
        throw new Error(`connection closed; got ${JSON.stringify(lines)} + ${this.#buf}`);
      }
      this.#buf += decoder.decode(chunk);
    }
  }

  /** Reads `n` replies. */
  async replies(n: number): Promise<string[]> {
    const out: string[] = [];
    for (let i = 0; i < n; i++) out.push(await this.reply());
    return out;
  }

  /** Sends one command line and returns its reply. */
  async command(line: string): Promise<string> {
    await this.send(line + "\r\n");
    return await this.reply();
  }
}

/** A running session. */
export interface Session {
  readonly client: Client;
  readonly sink: FakeSink;
  readonly server: MemoryConn;
  readonly done: Promise<ReceiverOutcome>;
  /** Closes both ends and waits for the receiver. */
  end(): Promise<ReceiverOutcome>;
}

/** Starts a receiver and reads its greeting. */
export async function startSession(
  opts: {
    sink?: FakeSink;
    otherSink?: MessageSink;
    options?: Partial<ReceiverOptions>;
    log?: Logger;
  } = {},
): Promise<Session & { greeting: string }> {
  const { server, client } = connPair();
  const sink = opts.sink ?? new FakeSink();
  const receiver = new SmtpReceiver({
    conn: server,
    reader: new LineReader(server),
    sink: opts.otherSink ?? sink,
    log: opts.log ?? NULL_LOGGER,
    options: { ...TEST_OPTIONS, ...opts.options },
  });
  const done = receiver.run();
  const c = new Client(client);
  const greeting = await c.reply();
  return {
    client: c,
    sink,
    server,
    done,
    greeting,
    async end() {
      client.destroy();
      const outcome = await done;
      server.destroy();
      return outcome;
    },
  };
}

/** Starts a session and says EHLO. */
export async function startReady(
  opts: Parameters<typeof startSession>[0] = {},
): Promise<Session> {
  const s = await startSession(opts);
  const ehlo = await s.client.command("EHLO client.test");
  if (!ehlo.startsWith("250")) throw new Error(`EHLO failed: ${ehlo}`);
  return s;
}

/** Text to bytes. */
export function bytes(text: string): Uint8Array {
  return encoder.encode(text);
}
