/**
 * Property tests over the session state machines: any sequence of commands, arguments and
 * garbage bytes, in any chunking, gets well-formed replies and ends the session cleanly —
 * never an exception, never a hang. SmtpReceiver over an in-memory Conn with a FakeSink;
 * the ODMR provider session (runProviderSession) over an in-memory Conn with a temp database.
 */
import { ok as assert } from "node:assert/strict";
import fc from "fast-check";
import { connPair } from "../_helpers/conn_pair.ts";
import type { MemoryConn } from "../_helpers/conn_pair.ts";
import { FakeSink } from "../_helpers/fake_sink.ts";
import { runTestProvider, withProviderStores } from "../_helpers/test_provider.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { SmtpReceiver } from "../../src/smtp/receiver.ts";
import { runs, splitAt } from "./_runs.ts";
import { concatBytes } from "../../src/wire/bytes.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const SESSION_DEADLINE_MS = 5_000;

const verbLine = fc.oneof(
  fc.constantFrom(
    "EHLO client.test",
    "HELO client.test",
    "EHLO",
    "MAIL FROM:<a@b.test>",
    "MAIL FROM:<> SIZE=10 BODY=8BITMIME",
    "MAIL FROM:<a@b.test> SMTPUTF8",
    "RCPT TO:<x@example.org>",
    "RCPT TO:<x@other.test>",
    "RCPT TO:<postmaster>",
    "DATA",
    "BDAT 5",
    "BDAT 0 LAST",
    "BDAT 3 LAST",
    "RSET",
    "NOOP",
    "VRFY x",
    "HELP",
    "STARTTLS",
    "AUTH PLAIN AGFsaWNlAHB3",
    "AUTH CRAM-MD5",
    "AUTH SCRAM-SHA-256 biwsbj1hbGljZSxyPWFiYw==",
    "AUTH LOGIN",
    "AUTH X-NOPE",
    "*",
    "ATRN",
    "ATRN example.org",
    "ATRN example.org,,x",
    "ETRN example.org",
    "TURN",
    ".",
    "",
    "QUIT",
  ),
  fc.string({ maxLength: 60 }),
  fc.string({ unit: "binary", maxLength: 60 }),
);
/** A session script: lines joined by CRLF, with some raw garbage and bare CR/LF mixed in. */
const script = fc.tuple(
  fc.array(
    fc.oneof(
      { weight: 8, arbitrary: verbLine.map((l) => enc.encode(`${l}\r\n`)) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }) },
      {
        weight: 1,
        arbitrary: fc.constantFrom("\n", "\r", "\r\n.\r\n", ".\r\n").map((s) => enc.encode(s)),
      },
      {
        weight: 1,
        arbitrary: fc.integer({ min: 0, max: 2000 }).map((n) => enc.encode("x".repeat(n))),
      },
    ),
    { maxLength: 30 },
  ).map(concatBytes),
  fc.array(fc.nat(), { maxLength: 10 }),
);

/** Feeds `bytes` in chunks, then closes; returns everything the server wrote. */
async function drive(
  client: MemoryConn,
  server: MemoryConn,
  done: Promise<unknown>,
  bytes: Uint8Array,
  cuts: number[],
): Promise<string> {
  for (const piece of splitAt(bytes, cuts)) {
    if (server.closed) break;
    await client.write(piece).catch(() => {});
    await new Promise((r) => setTimeout(r, 0));
  }
  client.destroy();
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    await Promise.race([
      done,
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error("session did not end")), SESSION_DEADLINE_MS);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    server.destroy();
  }
  return dec.decode(concatBytes(server.written));
}

/** Every line the server wrote is a reply line (`NNN text` or `NNN-text`), CRLF-terminated. */
function assertReplies(out: string): void {
  if (out === "") return;
  assert(out.endsWith("\r\n"), `output ends with CRLF: ${JSON.stringify(out.slice(-40))}`);
  for (const line of out.slice(0, -2).split("\r\n")) {
    assert(/^[2-5]\d\d[ -]/.test(line), `not a reply line: ${JSON.stringify(line)}`);
  }
}

Deno.test("fuzz: SmtpReceiver answers any command sequence and ends without throwing", async () => {
  await fc.assert(
    fc.asyncProperty(script, async ([bytes, cuts]) => {
      const { server, client } = connPair();
      const receiver = new SmtpReceiver({
        conn: server,
        reader: new LineReader(server),
        sink: new FakeSink(),
        log: NULL_LOGGER,
        options: {
          hostname: "mx.test",
          maxMessageBytes: 1000,
          maxRecipients: 3,
          commandTimeoutMs: 2_000,
          maxErrors: 5,
          addTraceHeader: true,
        },
      });
      const out = await drive(client, server, receiver.run(), bytes, cuts);
      assert(out.startsWith("220 "), "greeting first");
      assertReplies(out);
    }),
    { numRuns: runs(400) },
  );
});

Deno.test("fuzz: the ODMR provider session answers any command sequence without throwing", async () => {
  await withProviderStores(async (stores) => {
    const errors: string[] = [];
    const log = {
      ...NULL_LOGGER,
      error: (event: string, fields?: Record<string, unknown>) => {
        errors.push(`${event} ${JSON.stringify(fields)}`);
      },
      with: () => log,
    };
    await fc.assert(
      fc.asyncProperty(script, async ([bytes, cuts]) => {
        const { server, client } = connPair();
        const done = runTestProvider(server, stores, {
          log,
          options: { lineRecords: false, commandTimeoutMs: 2_000 },
        });
        const out = await drive(client, server, done, bytes, cuts);
        assert(out.startsWith("220 "), "greeting first");
        assertReplies(out);
        assert(errors.length === 0, `session_error logged: ${errors.join("; ")}`);
      }),
      { numRuns: runs(300) },
    );
  });
});
