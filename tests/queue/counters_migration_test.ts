/**
 * Schema step 7 (issue 13): new messages are counted in by the statements that store them, not
 * by insert triggers. On a file made by the previous version, with mail in it, the counters
 * after the upgrade and after more mail, settlements and deletes are what the rows say.
 */
import assert from "node:assert/strict";
import type { DatabaseSync } from "node:sqlite";
import { applyMigrations, openDatabase } from "../../src/queue/db.ts";
import { QUEUE_MIGRATIONS } from "../../src/queue/_schema.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { NewRecipient } from "../../src/queue/types.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

type Counts = Record<string, [messages: number, bytes: number]>;

/** The counter tables, without keys at zero. */
function counters(db: DatabaseSync): { waiting: Counts; usage: Counts } {
  const waiting: Counts = {};
  for (const r of db.prepare("SELECT route, domain, messages, bytes FROM route_waiting").all()) {
    if (r.messages !== 0) waiting[`${r.route} ${r.domain}`] = [Number(r.messages), Number(r.bytes)];
  }
  const usage: Counts = {};
  for (const r of db.prepare("SELECT domain, messages, bytes FROM domain_usage").all()) {
    if (r.messages !== 0) usage[String(r.domain)] = [Number(r.messages), Number(r.bytes)];
  }
  return { waiting, usage };
}

/** The same, counted from the rows: messages with a queued recipient per key, atrn ones per domain. */
function recount(db: DatabaseSync): { waiting: Counts; usage: Counts } {
  const count = (sql: string): Counts => {
    const out: Counts = {};
    for (const r of db.prepare(sql).all()) out[String(r.k)] = [Number(r.n), Number(r.b)];
    return out;
  };
  return {
    waiting: count(
      "SELECT k, count(*) AS n, sum(size) AS b FROM (SELECT DISTINCT r.route || ' ' || r.domain " +
        "AS k, m.id, m.size FROM recipients r JOIN messages m ON m.id = r.message_id " +
        "WHERE r.status = 'queued') GROUP BY k",
    ),
    usage: count(
      "SELECT k, count(*) AS n, sum(size) AS b FROM (SELECT DISTINCT r.domain AS k, m.id, " +
        "m.size FROM recipients r JOIN messages m ON m.id = r.message_id " +
        "WHERE r.route = 'atrn') GROUP BY k",
    ),
  };
}

async function send(store: SqliteQueueStore, size: number, recipients: NewRecipient[]) {
  const w = await store.begin({ mailFrom: "s@x.test", params: {}, recipients });
  await w.write(new Uint8Array(size));
  await w.commit();
  return w.id;
}

const rcpt = (address: string, route?: "mx"): NewRecipient => ({
  address,
  domain: address.slice(address.indexOf("@") + 1),
  ...(route === undefined ? {} : { route }),
});

Deno.test("schema step 7: counters stay what the rows say across the upgrade and after it (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const old = openDatabase(dataDir);
    applyMigrations(old, "queue", QUEUE_MIGRATIONS.slice(0, 6));
    old.exec(`
      INSERT INTO messages (id, received_at, mail_from, size, params)
        VALUES ('0000000001AAAAAAAA', 1000, 's@x.test', 10, '{}'),
               ('0000000002AAAAAAAA', 1001, 's@x.test', 20, '{}');
      INSERT INTO recipients (message_id, address, domain, route, next_attempt_at) VALUES
        ('0000000001AAAAAAAA', 'a@one.test', 'one.test', 'atrn', NULL),
        ('0000000001AAAAAAAA', 'b@one.test', 'one.test', 'atrn', NULL),
        ('0000000002AAAAAAAA', 'c@one.test', 'one.test', 'atrn', NULL),
        ('0000000002AAAAAAAA', 'd@two.test', 'two.test', 'mx', 1001);
    `);
    const before = counters(old);
    assert.deepEqual(before, recount(old));
    old.close();

    const db = openDatabase(dataDir);
    const store = new SqliteQueueStore(db, { now: () => 5000 });
    try {
      assert.deepEqual(counters(db), before, "the upgrade keeps the counters");
      const triggers = db.prepare(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE '%_insert'",
      ).all();
      assert.deepEqual(triggers, [], "no insert trigger counts a second time");
      // Two recipients of one domain, one mx of a domain that also has an atrn one, one alone.
      const id = await send(store, 300, [
        rcpt("e@one.test"),
        rcpt("f@one.test"),
        rcpt("g@two.test", "mx"),
        rcpt("h@two.test"),
        rcpt("i@three.test"),
      ]);
      await send(store, 7, [rcpt("j@two.test", "mx"), rcpt("k@two.test", "mx")]);
      assert.deepEqual(counters(db), recount(db));
      assert.deepEqual(counters(db).waiting["atrn one.test"], [3, 330]);
      assert.deepEqual(counters(db).waiting["mx two.test"], [3, 327]);
      assert.deepEqual(await store.usage("two.test"), { messages: 1, bytes: 300 });
      assert.deepEqual(await store.usage("one.test"), { messages: 3, bytes: 330 });
      // Out again: a delete counts out through the triggers that stay.
      assert.equal(await store.delete([id, "0000000001AAAAAAAA"]), 2);
      assert.deepEqual(counters(db), recount(db));
      assert.deepEqual(await store.usage("one.test"), { messages: 1, bytes: 20 });
    } finally {
      await store.close();
    }
  });
});
