/**
 * A call that cannot get a connection in time (the pool's every connection held: here the only
 * one, by a transaction that answers but does not end) fails at its deadline like one whose
 * connection went silent: serve answers 451 or logs it, a `user` command prints an error line.
 * Before, the users' edit and read, the ATRN timestamps and the shared key waited in the pool
 * for as long as the connection stayed held. Once it frees, the pool serves the next call (the
 * late calls' queries go out then, their answers dropped), and a late query whose connection
 * then goes silent is watched: that connection is dropped, though no other call uses it.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { CredentialStore } from "../../src/auth/store.ts";
import { editAuthSnapshot, readAuthSnapshot } from "../../src/queue/pg/auth_mirror.ts";
import { loadSharedKey } from "../../src/queue/pg/shared_key.ts";
import type { PgQueueStore } from "../../src/queue/pg/store.ts";
import { PgUserState } from "../../src/queue/pg/user_state.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import {
  bounded,
  proxyOf,
  shortDeadlineTest,
  STEP_BOUND_MS,
} from "../_helpers/pg_short_deadline.ts";
import { until } from "../_helpers/wait_until.ts";

/** Holds the pool's only connection in a transaction until `release()`. */
async function holdPool(store: PgQueueStore) {
  let release!: () => void;
  const released = new Promise<void>((r) => release = r);
  let began!: () => void;
  const isBegun = new Promise<void>((r) => began = r);
  const done = store.pool.begin(async (tx) => {
    await tx`SELECT 1`;
    began();
    await released;
  });
  await isBegun;
  return { release: () => (release(), done) };
}

const ok = () => "ok";
const failed = (e: Error) => `failed: ${e.message}`;

await shortDeadlineTest(
  "calls that get no connection in time fail at their deadline; the freed pool serves the next ones (#13)",
  { db: "pool_wait", max: 1 },
  async (t) => {
    const copy = new DatabaseSync(":memory:");
    new CredentialStore(copy);
    const s = t.store;
    const ms = s.callDeadlineMs;
    const calls: readonly (readonly [string, () => Promise<string>])[] = [
      ["users' edit", () => editAuthSnapshot(s.pool, copy, () => Promise.resolve("ok"), ms)],
      ["users", () => readAuthSnapshot(s.pool, copy, ms).then(ok)],
      ["ATRN timestamps", () => PgUserState.open(s.pool, NULL_LOGGER, ms).then(ok)],
      ["shared key", () => loadSharedKey(s.pool, "test_key", 32, ms).then(ok)],
      ["quota usage", () => s.usage("example.org").then(ok)],
      ["health check", () => s.ping().then(ok)],
    ];
    try {
      const held = await holdPool(s);
      const outcomes = await Promise.all(calls.map(([, call]) => bounded(call().catch(failed))));
      for (const [i, [what]] of calls.entries()) {
        const bound = what === "health check" ? 3000 : ms;
        assert.equal(
          outcomes[i]?.replace(/ \(connection silent\?\)$/, ""),
          `failed: ${what}: no answer from PostgreSQL within ${bound} ms`,
        );
      }
      await held.release();
      for (const [, call] of calls) assert.equal(await bounded(call().catch(failed)), "ok");
    } finally {
      copy.close();
    }
  },
);

await shortDeadlineTest(
  "a query that went out only after its deadline, on a connection then silent: that connection is dropped (#13)",
  { db: "pool_wait_late", proxy: true, max: 1 },
  async (t) => {
    const proxy = proxyOf(t);
    const held = await holdPool(t.store);
    const usage = await bounded(t.store.usage("example.org").then(ok, failed));
    assert.match(usage, /^failed: quota usage: no answer from PostgreSQL within 500 ms/);
    // Its query still waits in the pool; it goes out on the connection once free, and stalls.
    const stalled = proxy.stallWhenSent("FROM messages WHERE id IN");
    const open = proxy.openConnections;
    await held.release();
    assert.equal(await bounded(stalled.then(() => "stalled")), "stalled");
    // No other call: before, nothing watched it, and the pool kept the silent connection.
    await until("the silent connection dropped", () => proxy.openConnections < open, STEP_BOUND_MS);
    assert.equal(await bounded(t.store.usage("example.org").then(ok, failed)), "ok");
  },
);
