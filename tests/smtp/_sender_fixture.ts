/** Shared setup for SmtpSender tests: a sender and a scripted server over a connPair. */
import assert from "node:assert/strict";
import { connPair, type MemoryConn } from "../_helpers/conn_pair.ts";
import {
  type ScriptedServer,
  type ScriptedServerOptions,
  startScriptedServer,
} from "../_helpers/scripted_server.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import {
  type Capabilities,
  type MessageResult,
  type OutboundMessage,
  type SenderOptions,
  SmtpSender,
} from "../../src/smtp/sender.ts";
import type { MessageParams } from "../../src/queue/types.ts";

export const enc = new TextEncoder();
export const dec = new TextDecoder();

/** A sender talking to a scripted server. */
export interface Fixture {
  readonly sender: SmtpSender;
  readonly server: ScriptedServer;
  readonly client: MemoryConn;
}

/** Starts a scripted server and a sender on the two ends of a connPair. */
export function setup(
  script: ScriptedServerOptions = {},
  options: Partial<SenderOptions> = {},
): Fixture {
  const { client, server: serverEnd } = connPair();
  const server = startScriptedServer(serverEnd, script);
  const sender = new SmtpSender({
    conn: client,
    reader: new LineReader(client),
    log: NULL_LOGGER,
    options: { hostname: "provider.test", lineRecords: false, ...options },
  });
  return { sender, server, client };
}

/** Greets and says EHLO; fails the test unless both succeed. */
export async function ready(f: Fixture): Promise<Capabilities> {
  const greeting = await f.sender.greet();
  assert.equal(greeting.code, 220);
  const caps = await f.sender.hello();
  assert("isExtended" in caps, `hello failed: ${JSON.stringify(caps)}`);
  return caps;
}

/** Ends the session (QUIT) and waits for the server loop. */
export async function finish(f: Fixture): Promise<void> {
  await f.sender.quit();
  f.client.destroy();
  await f.server.done;
}

/** A body source: each call of `readBody` reads the body anew. */
export type BodySource = () => AsyncIterable<Uint8Array> | Iterable<Uint8Array>;

/**
 * A message with recipients r0@customer.test… and the given body chunks (an async iterable
 * can be read once only: the sender reads it for its check and, when small, sends from that).
 */
export function message(
  opts: {
    body?: string | Uint8Array | readonly Uint8Array[] | AsyncIterable<Uint8Array> | BodySource;
    recipients?: readonly string[];
    params?: MessageParams;
    mailFrom?: string;
    size?: number;
  } = {},
): OutboundMessage {
  const raw = opts.body ?? "Subject: hi\r\n\r\nhello\r\n";
  const body: BodySource = typeof raw === "function"
    ? raw
    : typeof raw === "string"
    ? () => [enc.encode(raw)]
    : raw instanceof Uint8Array
    ? () => [raw]
    : () => raw;
  const recipients = (opts.recipients ?? ["r0@customer.test"]).map((address, i) => ({
    id: 100 + i,
    address,
  }));
  return {
    mailFrom: opts.mailFrom ?? "sender@remote.test",
    params: opts.params ?? {},
    size: opts.size ?? (typeof raw === "string" ? enc.encode(raw).length : 0),
    recipients,
    readBody: body,
  };
}

/** The text of everything the client wrote, from chunk `from` on. */
export function writtenText(client: MemoryConn, from = 0): string {
  return client.written.slice(from).map((c) => dec.decode(c)).join("");
}

/** Outcome and reply code of each recipient, e.g. "delivered 250". */
export function outcomeCodes(r: MessageResult): string[] {
  return r.recipients.map((x) => `${x.outcome} ${x.reply.code}`);
}

/** A body too big to keep in memory whose second read (the one that sends) fails midway. */
export function failingOnResend(): () => AsyncGenerator<Uint8Array> {
  let reads = 0;
  return async function* () {
    const pass = ++reads;
    for (let i = 0; i < 8; i++) {
      if (pass === 2 && i === 2) throw new Error("disk read failed");
      await Promise.resolve();
      yield enc.encode(("x".repeat(62) + "\r\n").repeat(1024));
    }
  };
}
