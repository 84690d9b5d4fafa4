import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { connect } from "../../src/net/conn.ts";
import type { Conn } from "../../src/net/conn.ts";
import { listen } from "../../src/net/listener.ts";
import { loadSecureContext } from "../../src/net/tls_context.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import type { LogFields, Logger } from "../../src/observe/log.ts";
import { SmtpReceiver } from "../../src/smtp/receiver.ts";
import type { ReceiverOutcome } from "../../src/smtp/receiver.ts";
import { FakeSink } from "../_helpers/fake_sink.ts";
import { hasOpenssl, makeTestCa } from "../_helpers/certs.ts";
import { readReply, send } from "../_helpers/conn_replies.ts";
import { TEST_OPTIONS } from "./_session.ts";

const OPENSSL = hasOpenssl();
if (!OPENSSL) {
  // deno-lint-ignore no-console -- a skipped test says why (docs/architecture.md "Conventions")
  console.log("skip: receiver STARTTLS tests need the openssl CLI to make a test certificate");
}

function recordingLogger(events: { event: string; fields: LogFields }[]): Logger {
  const log = (event: string, fields: LogFields = {}) => events.push({ event, fields });
  const logger: Logger = {
    debug: log,
    info: log,
    warn: log,
    error: log,
    with: () => logger,
  };
  return logger;
}

Deno.test({
  name: "SmtpReceiver STARTTLS drops plaintext pipelined after it and forgets the session",
  ignore: !OPENSSL,
  async fn() {
    const ca = await makeTestCa();
    assert(ca);
    const events: { event: string; fields: LogFields }[] = [];
    const sink = new FakeSink();
    let session: Promise<ReceiverOutcome> | undefined;
    const serverConns: Conn[] = [];
    const listener = await listen({
      host: "127.0.0.1",
      port: 0,
      onConn: (conn) => {
        serverConns.push(conn);
        const rx = new SmtpReceiver({
          conn,
          reader: new LineReader(conn),
          sink,
          log: recordingLogger(events),
          options: {
            ...TEST_OPTIONS,
            tls: { secureContext: loadSecureContext(ca.certPath, ca.keyPath) },
          },
        });
        session = rx.run();
      },
    });
    const { conn } = await connect({ host: "127.0.0.1", port: listener.port });
    try {
      const reader = new LineReader(conn);
      assertEquals(await readReply(reader), "220 mx.test ESMTP ready");
      await send(conn, "EHLO client.test\r\n");
      const ehlo = await readReply(reader);
      assert(ehlo.endsWith("250-CHUNKING\n250 STARTTLS"), ehlo);
      // CVE-2011-0411: commands injected in the same segment as STARTTLS.
      await send(conn, "STARTTLS\r\nEHLO injected.test\r\nMAIL FROM:<evil@x.test>\r\n");
      assertEquals(await readReply(reader), "220 2.0.0 Ready to start TLS");
      assertEquals(reader.bufferedBytes, 0);
      const upgrade = await conn.startTlsClient({ servername: "localhost", ca: ca.caCertPem });
      assert(upgrade.authorized);
      assert(conn.isSecure);
      // The injected MAIL was not run: no transaction exists, and EHLO is needed again.
      await send(conn, "MAIL FROM:<a@b.test>\r\n");
      assertEquals(await readReply(reader), "503 5.5.1 Send EHLO or HELO first");
      await send(conn, "EHLO client.test\r\n");
      const secureEhlo = await readReply(reader);
      assert(!secureEhlo.includes("STARTTLS"), secureEhlo);
      assert(secureEhlo.endsWith("250 CHUNKING"), secureEhlo);
      await send(conn, "STARTTLS\r\n");
      assertEquals(await readReply(reader), "503 5.5.1 TLS already active");
      await send(conn, "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\n");
      assertEquals(await readReply(reader), "250 2.1.0 Sender OK");
      assertEquals(await readReply(reader), "250 2.1.5 OK");
      assertEquals(sink.transactions.length, 1);
      assertEquals(sink.transactions[0]?.mail.address, "a@b.test");
      assertEquals(sink.transactions[0]?.session.protocol, "ESMTPS");
      assertEquals(sink.transactions[0]?.session.heloName, "client.test");
      await send(conn, "QUIT\r\n");
      assertEquals(await readReply(reader), "221 2.0.0 Bye");
      assertEquals((await session)?.reason, "quit");
      const injection = events.find((e) => e.event === "smtp_starttls_injection");
      assert(injection, "the discarded plaintext is logged");
      assert(Number(injection.fields.discardedBytes) > 0);
    } finally {
      await conn.close();
      for (const c of serverConns) await c.close();
      await session;
      await listener.close();
      await ca.cleanup();
    }
  },
});
