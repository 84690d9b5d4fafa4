/**
 * `submission.auth_timeout` after STARTTLS: the session starts over under TLS (RFC 3207 §4.2),
 * and so does the AUTH deadline, as on the implicit-TLS port, whose session (and deadline)
 * begins once its handshake is done. It kept running from connect: the plaintext part and the
 * handshake ate the time a client had to authenticate under TLS, so port 587 gave less than 465.
 * The worst case for a stranger: the deadline before STARTTLS, the handshake (its own 60 s
 * bound), the deadline again. No clock decides: the deadline is read from the hook, with its
 * clock moved on by 50 s before STARTTLS.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { connect } from "../../src/net/conn.ts";
import type { Conn } from "../../src/net/conn.ts";
import { listen } from "../../src/net/listener.ts";
import { loadSecureContext } from "../../src/net/tls_context.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { SmtpReceiver } from "../../src/smtp/receiver.ts";
import type { ReceiverOutcome } from "../../src/smtp/receiver.ts";
import { AuthThrottle } from "../../src/auth/throttle.ts";
import { SubmissionAuth } from "../../src/submission/auth.ts";
import { FakeSink } from "../_helpers/fake_sink.ts";
import { hasOpenssl, makeTestCa } from "../_helpers/certs.ts";
import { readReply, send } from "../_helpers/conn_replies.ts";
import { TEST_OPTIONS } from "../smtp/_session.ts";
import { withStore } from "../auth/_fixtures.ts";

const OPENSSL = hasOpenssl();
const AUTH_TIMEOUT_MS = 60_000;

Deno.test({
  name: "submission: the AUTH deadline starts again after STARTTLS (as on the implicit-TLS port)",
  ignore: !OPENSSL,
  async fn() {
    await withStore(async (store) => {
      const ca = await makeTestCa();
      assert(ca);
      // The hook's clock: real time, plus what the test pretends has passed.
      let passedMs = 0;
      const deps = {
        credentials: store,
        throttle: new AuthThrottle(),
        log: NULL_LOGGER,
        hostname: "mx.test",
        timeoutMs: 10_000,
        authTimeoutMs: AUTH_TIMEOUT_MS,
        remoteAddress: "127.0.0.1",
        now: () => Date.now() + passedMs,
      };
      const auth = new SubmissionAuth(deps);
      let session: Promise<ReceiverOutcome> | undefined;
      const serverConns: Conn[] = [];
      const listener = await listen({
        host: "127.0.0.1",
        port: 0,
        onConn: (conn) => {
          serverConns.push(conn);
          session = new SmtpReceiver({
            conn,
            reader: new LineReader(conn),
            sink: new FakeSink(),
            log: NULL_LOGGER,
            options: {
              ...TEST_OPTIONS,
              commandTimeoutMs: 10_000,
              tls: { secureContext: loadSecureContext(ca.certPath, ca.keyPath) },
              auth,
            },
          }).run();
        },
      });
      const { conn } = await connect({ host: "127.0.0.1", port: listener.port });
      try {
        const reader = new LineReader(conn);
        await readReply(reader);
        await send(conn, "EHLO client.test\r\n");
        await readReply(reader);
        const before = auth.deadline ?? 0;
        assert(before <= Date.now() + AUTH_TIMEOUT_MS, "the deadline runs from connect");
        // 50 s spent in plaintext before STARTTLS.
        passedMs = 50_000;
        await send(conn, "STARTTLS\r\n");
        assertEquals(await readReply(reader), "220 2.0.0 Ready to start TLS");
        await conn.startTlsClient({ servername: "localhost", ca: ca.caCertPem });
        await send(conn, "EHLO client.test\r\n");
        const ehlo = await readReply(reader);
        assert(ehlo.includes("AUTH "), ehlo);
        // A fresh auth_timeout from the end of the handshake (on the hook's clock).
        const after = auth.deadline ?? 0;
        assert(
          after >= Date.now() + passedMs + AUTH_TIMEOUT_MS - 5_000,
          `deadline ${after - Date.now()} ms away after STARTTLS`,
        );
        await send(conn, "QUIT\r\n");
        assertEquals(await readReply(reader), "221 2.0.0 Bye");
      } finally {
        await conn.close();
        for (const c of serverConns) await c.close();
        await session;
        await listener.close();
        await ca.cleanup();
      }
    });
  },
});
