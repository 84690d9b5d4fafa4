/**
 * `odmr.auth_timeout` after STARTTLS: the session starts over under TLS (RFC 3207 §4.2), and so
 * does the AUTH deadline, as on submission (tests/submission/auth_deadline_starttls_test.ts) and
 * on the implicit-TLS port, whose session (and deadline) begins once its handshake is done. It
 * kept running from connect. No clock decides: the session's clock is moved on by 70 s (past a
 * 60 s deadline from connect) before STARTTLS, and the client then says nothing: the read that
 * ends is the idle timeout (`421 4.4.2`) when the deadline started again, and the AUTH deadline
 * (`421 4.7.0`) when it ran from connect.
 */
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { connect } from "../../src/net/conn.ts";
import { listen } from "../../src/net/listener.ts";
import { loadSecureContext } from "../../src/net/tls_context.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { CredentialStore } from "../../src/auth/store.ts";
import { AuthThrottle } from "../../src/auth/throttle.ts";
import { runProviderSession } from "../../src/odmr/provider.ts";
import { hasOpenssl, makeTestCa } from "../_helpers/certs.ts";
import { readReply, send } from "../_helpers/conn_replies.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

const OPENSSL = hasOpenssl();
const AUTH_TIMEOUT_MS = 60_000;
/** The idle timeout the silent client meets (real time: the test waits this long). */
const COMMAND_TIMEOUT_MS = 3_000;

Deno.test({
  name: "ODMR: the AUTH deadline starts again after STARTTLS (as on submission)",
  ignore: !OPENSSL,
  async fn() {
    await withTempDataDir(async (dataDir) => {
      const ca = await makeTestCa();
      assert(ca);
      const db = openDatabase(dataDir);
      const store = new SqliteQueueStore(db, { logger: NULL_LOGGER });
      const credentials = new CredentialStore(db, { scramIterations: 4096 });
      // The session's clock: real time, plus what the test pretends has passed.
      let passedMs = 0;
      const sessions: Promise<void>[] = [];
      const listener = await listen({
        host: "127.0.0.1",
        port: 0,
        onConn: (conn) => {
          sessions.push(runProviderSession(conn, {
            store,
            credentials,
            throttle: new AuthThrottle(),
            log: NULL_LOGGER,
            now: () => Date.now() + passedMs,
            options: {
              hostname: "odmr.test",
              secureContext: loadSecureContext(ca.certPath, ca.keyPath),
              requireTls: true,
              commandTimeoutMs: COMMAND_TIMEOUT_MS,
              authTimeoutMs: AUTH_TIMEOUT_MS,
              leaseSeconds: 60,
            },
          }));
        },
      });
      const { conn } = await connect({ host: "127.0.0.1", port: listener.port });
      try {
        const reader = new LineReader(conn);
        await readReply(reader, 15_000);
        await send(conn, "EHLO client.test\r\n");
        assertMatch(await readReply(reader, 15_000), /STARTTLS/);
        // 70 s spent in plaintext: past the deadline counted from connect.
        passedMs = 70_000;
        await send(conn, "STARTTLS\r\n");
        assertMatch(await readReply(reader, 15_000), /^220 /);
        await conn.startTlsClient({ servername: "localhost", ca: ca.caCertPem });
        // Silence: the session ends at the idle timeout, not at an AUTH deadline long past.
        const reply = await readReply(reader, 15_000);
        assertEquals(reply.slice(0, 9), "421 4.4.2", `after STARTTLS: ${reply}`);
      } finally {
        await conn.close();
        await Promise.all(sessions);
        await listener.close();
        store.close();
        await ca.cleanup();
      }
    });
  },
});
