/**
 * `odmr.auth_timeout` bounds the time from connect to a successful AUTH (SECURITY.md: `421
 * 4.7.0` at the deadline, NOOPs or not). Inside an AUTH exchange each response line was given
 * the whole time that was left when the AUTH command came, so a stranger answering each `334`
 * just before it held the slot about twice the deadline (three times with SCRAM's extra step).
 * In process over 127.0.0.1, as auth_throttle_test.ts.
 */
import { match as assertMatch, ok as assert } from "node:assert/strict";
import net from "node:net";
import { Buffer } from "node:buffer";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { CredentialStore } from "../../src/auth/store.ts";
import { AuthThrottle } from "../../src/auth/throttle.ts";
import { SocketConn } from "../../src/net/conn.ts";
import { runProviderSession } from "../../src/odmr/provider.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { greeted } from "../security/_raw.ts";

const AUTH_TIMEOUT_MS = 4_000;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("ODMR: an AUTH exchange answered slowly still ends at odmr.auth_timeout", async () => {
  await withTempDataDir(async (dataDir) => {
    const db = openDatabase(dataDir);
    const store = new SqliteQueueStore(db, { logger: NULL_LOGGER });
    const credentials = new CredentialStore(db, { scramIterations: 4096 });
    const sessions: Promise<void>[] = [];
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      sessions.push(runProviderSession(new SocketConn(socket), {
        store,
        credentials,
        throttle: new AuthThrottle({ baseDelayMs: 1, maxDelayMs: 1 }),
        log: NULL_LOGGER,
        options: {
          hostname: "odmr.test",
          requireTls: false,
          commandTimeoutMs: 10_000,
          authTimeoutMs: AUTH_TIMEOUT_MS,
          leaseSeconds: 60,
        },
      }));
    });
    try {
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const addr = server.address();
      assert(addr !== null && typeof addr === "object");
      using c = await greeted(addr.port);
      // LOGIN is offered in plaintext only under TLS: SCRAM's two steps serve as well.
      assertMatch(await c.command("AUTH SCRAM-SHA-256"), /^334 /);
      await sleep(AUTH_TIMEOUT_MS * 0.75);
      const first = Buffer.from("n,,n=mallory,r=abcdefghijklmnop").toString("base64");
      assertMatch(await c.command(first), /^334 /, "client-first well inside the deadline");
      // The client-final comes a second after the deadline: the session has ended by then.
      await sleep(AUTH_TIMEOUT_MS * 0.5);
      const proof = Buffer.from("x".repeat(32)).toString("base64");
      const final = Buffer.from(`c=biws,r=abcdefghijklmnop,p=${proof}`).toString("base64");
      const reply = await c.command(final);
      assertMatch(reply, /^421 4\.7\.0 /, `past odmr.auth_timeout the exchange went on: ${reply}`);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      await Promise.all(sessions);
      store.close();
    }
  });
});
