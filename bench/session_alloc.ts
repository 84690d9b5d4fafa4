// The MX session path alone (issue 13): our native listener (no read-ahead, read buffers passed
// on, as serve's SMTP listener), LineReader, SmtpReceiver and TracedSink over a sink that accepts
// everything at once (no store, no log), driven by raw Deno clients in this process, one 4 KB
// message per connection. Prints the heap allocated per message (deterministic: run it with a new
// space large enough that no GC runs while it measures) and this process's CPU time per message
// (client included: compare two builds, not absolute figures). Not part of `deno task bench`:
//   deno run -A --v8-flags=--min-semi-space-size=128,--max-semi-space-size=128,--expose-gc \
//     bench/session_alloc.ts 10 2000

import { listen } from "../src/net/listener.ts";
import type { Conn } from "../src/net/conn.ts";
import { LineReader } from "../src/wire/line_reader.ts";
import { SmtpReceiver } from "../src/smtp/receiver.ts";
import type { MessageSink, SinkTransaction } from "../src/smtp/sink.ts";
import { TracedSink } from "../src/cli/_serve_smtp_trace.ts";
import { queuedReply, REPLIES } from "../src/wire/replies.ts";
import { NULL_LOGGER } from "../src/observe/log.ts";

const [sessionsArg, messagesArg] = Deno.args;
const sessions = Number(sessionsArg ?? 10);
const messages = Number(messagesArg ?? 3000);

let ids = 0;
const sink: MessageSink = {
  begin(): Promise<SinkTransaction> {
    const id = `B${ids++}`;
    return Promise.resolve({
      id,
      addRecipient: () => Promise.resolve(REPLIES.recipientOk),
      write: () => Promise.resolve(),
      finish: () => Promise.resolve(queuedReply(id)),
      abort: () => Promise.resolve(),
    });
  },
};

async function serveOne(conn: Conn): Promise<void> {
  const traced = new TracedSink(sink, { log: NULL_LOGGER, client: conn.remoteAddress });
  const receiver = new SmtpReceiver({
    conn,
    reader: new LineReader(conn, { releaseConsumed: true }),
    sink: traced,
    log: NULL_LOGGER,
    options: {
      hostname: "mx.bench.example",
      maxMessageBytes: 50_000_000,
      maxRecipients: 100,
      commandTimeoutMs: 300_000,
      maxDataLineBytes: 1002,
      maxErrors: 10,
      maxIdleCommands: 20,
      addTraceHeader: true,
      events: traced.receiverEvents(undefined),
    },
  });
  await receiver.run();
  await conn.close();
}

const listener = await listen({
  host: "127.0.0.1",
  port: 0,
  native: true,
  readAhead: false,
  recycleReadBuffer: true,
  onConn: (conn) => void serveOne(conn),
});

const enc = new TextEncoder();
const commands = [
  "HELO c.example",
  "MAIL FROM:<a@src.example>",
  "RCPT TO:<u@bench.example>",
  "DATA",
]
  .map((c) => enc.encode(c + "\r\n"));
const body = enc.encode("Subject: b\r\n\r\n" + ("x".repeat(78) + "\r\n").repeat(51) + ".\r\n");
const quit = enc.encode("QUIT\r\n");

/** One message over one connection; each reply is one line in one read here. */
async function sendOne(buf: Uint8Array): Promise<void> {
  const c = await Deno.connect({ hostname: "127.0.0.1", port: listener.port });
  c.setNoDelay(true);
  const reply = async () => {
    for (;;) {
      const n = await c.read(buf);
      if (n === null) throw new Error("connection closed before a reply");
      if (buf[n - 1] === 10) return;
    }
  };
  try {
    await reply();
    for (const command of commands) {
      await c.write(command);
      await reply();
    }
    await c.write(body);
    await reply();
    await c.write(quit);
    await reply();
  } finally {
    c.close();
  }
}

async function batch(total: number): Promise<void> {
  let next = 0;
  await Promise.all(Array.from({ length: sessions }, async () => {
    const buf = new Uint8Array(64 * 1024);
    while (next < total) {
      next++;
      await sendOne(buf);
    }
  }));
}

/** User + system CPU time of this process so far, in ms (Linux: clock ticks of 10 ms). */
function cpuMs(): number {
  const fields = Deno.readTextFileSync("/proc/self/stat").split(") ")[1]?.split(" ") ?? [];
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

const gc = (globalThis as { gc?: () => void }).gc;
await batch(500); // warm-up
for (let round = 0; round < 3; round++) {
  gc?.();
  const heap0 = Deno.memoryUsage().heapUsed;
  const cpu0 = cpuMs();
  const started = performance.now();
  // With a 128 MB new space no GC runs during 500 messages (~40 MB): the heap grows by what they allocated.
  await batch(Math.min(messages, 500));
  const allocated = (Deno.memoryUsage().heapUsed - heap0) / Math.min(messages, 500);
  await batch(messages - Math.min(messages, 500));
  const cpu = (cpuMs() - cpu0) / messages;
  const rate = messages / ((performance.now() - started) / 1000);
  // deno-lint-ignore no-console -- a bench prints its figures
  console.log(
    `session path s${sessions} x ${messages} x 4 KB: ${(allocated / 1024).toFixed(1)} KB ` +
      `allocated/msg, ${(cpu * 1000).toFixed(0)} us CPU/msg (client included), ${
        rate.toFixed(0)
      } msg/s`,
  );
}
await listener.close();
