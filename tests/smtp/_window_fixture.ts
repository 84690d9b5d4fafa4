// sendMany's window against our own SmtpReceiver, for the window's tests: what the receiving
// sink answers is scripted by address, and the run returns what each side saw.
import assert from "node:assert/strict";
import { connPair } from "../_helpers/conn_pair.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { SmtpReceiver } from "../../src/smtp/receiver.ts";
import { type OutboundMessage, SmtpSender } from "../../src/smtp/sender.ts";
import type { MessageSink, SinkTransaction } from "../../src/smtp/sink.ts";
import { type Reply, reply } from "../../src/wire/reply.ts";
import { concatBytes } from "../../src/wire/bytes.ts";
import { dec, enc, outcomeCodes } from "./_sender_fixture.ts";

/** What the receiving sink answers, by recipient address. */
export interface Script {
  readonly mail?: (from: string) => Reply | undefined;
  readonly rcpt?: (to: string) => Reply | undefined;
  readonly final?: (to: string) => Reply | "close" | undefined;
  /** Message 1's final reply waits until the client wrote this text (or 1 s: `waited`). */
  readonly holdFirstUntil?: string;
  /** The caller's onResult throws at this result (1-based), as a failed settle would. */
  readonly throwAtResult?: number;
  /** Told of each result the caller got (1-based), before it may throw. */
  readonly onResult?: (n: number) => void;
  /** The receiver's size limit (default 10 MB): a body past it is refused at that chunk. */
  readonly maxMessageBytes?: number;
  /** The sink's `n`th write (1-based) of the message to `to` fails: 451 for that chunk. */
  readonly failWrite?: (to: string, n: number) => boolean;
  /** The receiver says LAST_ENDS_TRANSACTION in its EHLO (as the customer does). */
  readonly saysLastEnds?: boolean;
}

export interface Run {
  readonly seen: string[][];
  readonly bodies: Map<string, Uint8Array>;
  /** The reverse-path each stored body came with, by recipient. */
  readonly senders: Map<string, string>;
  readonly writes: string[];
  /** Message 1's final reply waited the whole second for `holdFirstUntil`. */
  readonly waited: boolean;
  readonly connectionLost: boolean;
  /** What sendMany threw, or "hung" when it had not returned within 5 s. */
  readonly error?: unknown;
}

export async function drain(
  messages: Iterable<OutboundMessage> | AsyncIterable<OutboundMessage>,
  script: Script = {},
  window = 8,
): Promise<Run> {
  const { client, server } = connPair();
  const bodies = new Map<string, Uint8Array>();
  const senders = new Map<string, string>();
  let finals = 0;
  let waited = false;
  const written = () => client.written.map((w) => dec.decode(w)).join("");
  const sink: MessageSink = {
    begin(mail) {
      const refused = script.mail?.(mail.address);
      if (refused !== undefined) return Promise.resolve(refused);
      let to = "";
      const chunks: Uint8Array[] = [];
      const tx: SinkTransaction = {
        id: `T${Math.random()}`,
        addRecipient(rcpt) {
          const r = script.rcpt?.(rcpt.address) ?? reply(250, "2.1.5", "OK");
          if (r.code === 250) to = rcpt.address;
          return Promise.resolve(r);
        },
        write(chunk) {
          if (script.failWrite?.(to, chunks.length + 1)) {
            return Promise.reject(new Error("disk full"));
          }
          chunks.push(chunk.slice());
          return Promise.resolve();
        },
        async finish() {
          if (++finals === 1 && script.holdFirstUntil !== undefined) {
            const until = script.holdFirstUntil;
            for (let i = 0; i < 100 && !written().includes(until); i++) {
              await new Promise((r) => setTimeout(r, 10));
            }
            waited = !written().includes(until);
          }
          const r = script.final?.(to);
          if (r === "close") {
            server.destroy();
            return reply(451, "4.3.0", "gone");
          }
          bodies.set(to, concatBytes(chunks));
          senders.set(to, mail.address);
          return r ?? reply(250, "2.0.0", "OK");
        },
        abort: () => Promise.resolve(),
      };
      return Promise.resolve(tx);
    },
  };
  const receiver = new SmtpReceiver({
    conn: server,
    reader: new LineReader(server),
    sink,
    log: NULL_LOGGER,
    options: {
      hostname: "customer.test",
      maxMessageBytes: script.maxMessageBytes ?? 10_000_000,
      maxRecipients: 100,
      commandTimeoutMs: 5_000,
      maxErrors: 10,
      addTraceHeader: false,
      saysLastEnds: script.saysLastEnds === true,
    },
  });
  const done = receiver.run();
  const sender = new SmtpSender({
    conn: client,
    reader: new LineReader(client),
    log: NULL_LOGGER,
    options: { hostname: "provider.test", lineRecords: false, window },
  });
  assert.equal((await sender.greet()).code, 220);
  const caps = await sender.hello();
  assert("chunking" in caps && caps.chunking && caps.pipelining);
  const seen: string[][] = [];
  let r: { readonly connectionLost: boolean } = { connectionLost: false };
  let error: unknown;
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    r = await Promise.race([
      sender.sendMany(messages, (_m, result) => {
        seen.push(outcomeCodes(result));
        script.onResult?.(seen.length);
        if (seen.length === script.throwAtResult) throw new Error("settle failed");
      }),
      new Promise<never>((_, reject) => timer = setTimeout(() => reject("hung"), 5_000)),
    ]);
    await sender.quit();
  } catch (err) {
    error = err;
  } finally {
    clearTimeout(timer);
  }
  client.destroy();
  await done;
  server.destroy();
  return {
    seen,
    bodies,
    senders,
    writes: client.written.map((w) => dec.decode(w)),
    waited,
    connectionLost: r.connectionLost,
    ...(error === undefined ? {} : { error }),
  };
}

/**
 * A body of `chunks` × 64 KiB lines, too big to keep (read again to send); each chunk comes a
 * turn of the event loop after the previous one, as from a store.
 */
export function slowBigBody(
  chunks: number,
  /** The read that sends (the second) holds chunks 3… until this is true (or 2,000 turns). */
  gate: () => boolean = () => true,
): () => AsyncGenerator<Uint8Array> {
  const line = enc.encode("x".repeat(62) + "\r\n");
  const chunk = new Uint8Array(1024 * line.length);
  for (let i = 0; i < 1024; i++) chunk.set(line, i * line.length);
  let reads = 0;
  return async function* () {
    const isSending = ++reads === 2;
    for (let i = 0; i < chunks; i++) {
      await new Promise((r) => setImmediate(r));
      for (let turn = 0; isSending && i >= 2 && !gate() && turn < 2_000; turn++) {
        await new Promise((r) => setImmediate(r));
      }
      yield chunk;
    }
  };
}
