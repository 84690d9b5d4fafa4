/**
 * The calls on the store's pool for what may take long (`queue delete ID…`, `queue delete
 * --domain`, `queue migrate`'s import of a message) answer within their own deadline when
 * their connection goes silent (the server accepted it and never answers again, which TCP
 * keepalive does not see while the far end's kernel acknowledges). Before, each waited for as
 * long as TCP kept the connection (forever on loopback): the command hung, holding the data
 * directory's lock in the case of migrate. The pool recovers: the call run again answers, and
 * what it did is done once.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import type { QueuedMessage } from "../../src/queue/types.ts";
import { bounded, triedOnce, untilAnswered } from "../_helpers/pg_short_deadline.ts";
import { type PostgresCluster, postgresTest } from "../_helpers/postgres.ts";
import { type PostgresProxy, startPostgresProxy } from "../_helpers/postgres_proxy.ts";
import { maintenanceOptions, queueMessage } from "../_helpers/queue_fixtures.ts";
import { until } from "../_helpers/wait_until.ts";

/** The store's deadlines (its calls' and its long calls'): short, so the test waits little. */
const DEADLINE_MS = 500;

/** Runs `fn` on a store reached through a proxy, with short deadlines, on a fresh database. */
async function withStalledStore(
  pg: PostgresCluster,
  db: string,
  fn: (store: PgQueueStore, proxy: PostgresProxy) => Promise<void>,
): Promise<void> {
  const url = await pg.createDatabase(db);
  const proxy = await startPostgresProxy(pg.port);
  const options = { nodeId: "n1", callDeadlineMs: DEADLINE_MS, longDeadlineMs: DEADLINE_MS };
  const store = await PgQueueStore.open({ url: proxy.via(url) }, options).catch(async (err) => {
    await proxy.close();
    throw err;
  });
  try {
    await fn(store, proxy);
  } finally {
    await proxy.close();
    await store.close();
  }
}

/** Stalls the connection that sends `statement`, then runs `call`: its outcome, bounded. */
async function stalledAt(
  proxy: PostgresProxy,
  statement: string,
  call: () => Promise<string>,
): Promise<string> {
  const stalled = proxy.stallWhenSent(statement);
  const got = await bounded(call().catch((e) => `failed: ${e.message}`));
  assert.equal(await bounded(stalled.then(() => "stalled")), "stalled");
  return got;
}

const LATE = /^failed: [a-z ]+: no answer from PostgreSQL within 500 ms/;

await postgresTest(
  "queue delete, delete --domain and migrate's import on a silent connection fail within their deadline; run again, they answer",
  async (pg) => {
    await withStalledStore(pg, "stall_delete", async (store, proxy) => {
      const id = await queueMessage(store, { from: "s@example.net", to: ["u@example.org"] });
      const remove = () => store.delete([id]).then((n) => `deleted ${n}`);
      assert.match(await stalledAt(proxy, "DELETE FROM messages WHERE id = ANY", remove), LATE);
      assert.match(await untilAnswered(remove), /(^| \| )deleted 1$/);
      assert.deepEqual(await store.list(), []);
    });
    await withStalledStore(pg, "stall_delete_domain", async (store, proxy) => {
      await queueMessage(store, { from: "s@example.net", to: ["u@example.org"] });
      const remove = () => store.deleteDomain("example.org").then((n) => `deleted ${n}`);
      assert.match(
        await stalledAt(proxy, "SELECT DISTINCT message_id FROM recipients", remove),
        LATE,
      );
      assert.match(await untilAnswered(remove), /(^| \| )deleted 1$/);
      assert.deepEqual(await store.list(), []);
    });
    await withStalledStore(pg, "stall_import", async (store, proxy) => {
      const message: QueuedMessage = {
        id: await store.newId(),
        receivedAt: Date.now(),
        mailFrom: "s@example.net",
        size: 4,
        params: {},
        recipients: [{
          id: 1,
          address: "u@example.org",
          domain: "example.org",
          status: "queued",
          attempts: 0,
          route: "atrn",
        }],
      };
      const body = async function* () {
        yield new TextEncoder().encode("hi\r\n");
      };
      const copy = () =>
        store.importMessage(message, {
          body: body(),
          reportPending: new Set(),
          delayNotified: false,
        }).then((isCopied) => isCopied ? "copied" : "skipped");
      assert.match(await stalledAt(proxy, "INSERT INTO migrated_messages", copy), LATE);
      assert.match(await untilAnswered(copy), /(^| \| )copied$/);
      assert.deepEqual((await store.list()).map((m) => m.id), [message.id]);
    });
  },
);

await postgresTest(
  "a maintenance pass on a silent connection fails within its deadline and leaves no lock behind; the next pass expires the mail",
  async (pg) => {
    for (const statement of ["pg_try_advisory_lock", "FROM report_pending p WHERE NOT EXISTS"]) {
      await withStalledStore(pg, `stall_maintain_${statement.length}`, async (store, proxy) => {
        await queueMessage(store, { from: "s@example.net", to: ["u@example.org"] });
        // Every message is past its age: the pass expires it (and queues the sender's report).
        const options = maintenanceOptions({ maxAgeMs: () => -1 });
        const pass = () => store.maintain(options).then((r) => `expired ${r.expiredRecipients}`);
        // Before: no answer ever, and serve's passes never overlap, so none ran again: its mail
        // never expired, no report went out, delay notices stopped.
        assert.match(await stalledAt(proxy, statement, pass), LATE);
        assert.match(await untilAnswered(pass), /(^| \| )expired 1$/);
      });
    }
  },
);

await postgresTest(
  "a long call past its deadline leaves no statement running on the server (the long pool's statement_timeout)",
  async (pg) => {
    const url = await pg.createDatabase("long_statement_timeout");
    const admin = postgres(url, { max: 1, onnotice: () => {} });
    const store = await PgQueueStore.open({ url }, { nodeId: "n1", longDeadlineMs: DEADLINE_MS });
    /** Statements of the delete still running on the server. */
    const running = async () =>
      (await admin`SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid() AND state = 'active'
          AND query LIKE 'DELETE FROM messages%'`)[0]?.n as number;
    try {
      const id = await queueMessage(store, { from: "s@example.net", to: ["u@example.org"] });
      // A statement that runs long on the server without waiting for a lock (lock_timeout
      // bounds those already): each deleted message costs 30 s.
      await admin.unsafe(`
        CREATE FUNCTION slow_delete() RETURNS trigger LANGUAGE plpgsql AS
          $$ BEGIN PERFORM pg_sleep(30); RETURN OLD; END $$;
        CREATE TRIGGER slow_delete BEFORE DELETE ON messages
          FOR EACH ROW EXECUTE FUNCTION slow_delete();`);
      const remove = () => store.delete([id]).then((n) => `deleted ${n}`);
      assert.match(await triedOnce(remove), /^failed: /);
      // Before: the client gave up at its deadline and dropped the connection, and the server
      // went on running the DELETE (and held its locks) for the whole 30 s: PostgreSQL notices
      // a client gone only when it next writes to it.
      await until(
        "the server ended the delete's statement",
        async () => await running() === 0,
        5_000,
      );
      await admin.unsafe("DROP TRIGGER slow_delete ON messages");
      assert.deepEqual((await store.list()).map((m) => m.id), [id], "nothing was deleted");
    } finally {
      await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity
        WHERE datname = current_database() AND pid <> pg_backend_pid()
          AND query LIKE 'DELETE FROM messages%'`;
      await admin.end({ timeout: 1 });
      await store.close();
    }
  },
);
