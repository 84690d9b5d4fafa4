/**
 * A message's last write shares the group's open transaction without a savepoint
 * (GroupTransaction.writeDurable, #13): a statement that fails part way through it must leave
 * nothing of that message, and nothing else undone, or else everything of that transaction fails.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { openDatabase } from "../../src/queue/db.ts";
import { GroupTransaction, type TxParticipant } from "../../src/queue/_group_tx.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { Route } from "../../src/queue/types.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

const enc = new TextEncoder();

/** domain_usage and route_waiting as stored, and as a recount from the rows would make them. */
function counters(db: DatabaseSync): { stored: string[]; recount: string[] } {
  const lines = (sql: string) =>
    db.prepare(sql).all().map((r) => `${r.k} ${r.messages} ${r.bytes}`).sort();
  return {
    stored: [
      ...lines(
        "SELECT 'usage ' || domain AS k, messages, bytes FROM domain_usage WHERE messages > 0",
      ),
      ...lines(
        "SELECT 'waiting ' || route || ' ' || domain AS k, messages, bytes FROM route_waiting " +
          "WHERE messages > 0",
      ),
    ],
    recount: [
      ...lines(
        "SELECT 'usage ' || domain AS k, count(*) AS messages, sum(size) AS bytes FROM " +
          "(SELECT DISTINCT r.domain, m.id, m.size FROM recipients r JOIN messages m " +
          "ON m.id = r.message_id WHERE r.route = 'atrn') GROUP BY domain",
      ),
      ...lines(
        "SELECT 'waiting ' || route || ' ' || domain AS k, count(*) AS messages, " +
          "sum(size) AS bytes FROM (SELECT DISTINCT r.route, r.domain, m.id, m.size " +
          "FROM recipients r JOIN messages m ON m.id = r.message_id " +
          "WHERE r.status = 'queued') GROUP BY route, domain",
      ),
    ],
  };
}

Deno.test("a message whose recipient row fails leaves no row; its group's other message commits (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    let commits = 0;
    const store = new SqliteQueueStore(openDatabase(dataDir), {
      bodyFiles: false,
      onGroupCommit: () => commits++,
    });
    const observer = new DatabaseSync(`${dataDir}/odmr.db`);
    try {
      const good = await store.begin({
        mailFrom: "a@src.test",
        params: {},
        recipients: [{ address: "u@x.test", domain: "x.test" }],
      });
      // Its first recipient is stored (and counted in by the triggers), the second breaks the
      // CHECK on route: the message row and the first recipient are in by then.
      const bad = await store.begin({
        mailFrom: "b@src.test",
        params: {},
        recipients: [
          { address: "v@x.test", domain: "x.test" },
          { address: "w@y.test", domain: "y.test" },
          { address: "z@x.test", domain: "x.test", route: "nowhere" as Route },
        ],
      });
      await good.write(enc.encode("Subject: good\r\n\r\nkept\r\n"));
      await bad.write(enc.encode("Subject: bad\r\n\r\nnever stored\r\n"));
      const goodDone = good.commit();
      await assert.rejects(bad.commit(), /CHECK constraint failed/);
      await goodDone;
      assert.equal(commits, 1, "both in one group transaction");
      const ids = observer.prepare("SELECT id FROM messages").all().map((r) => r.id);
      assert.deepEqual(ids, [good.id]);
      const rcpts = observer.prepare("SELECT address FROM recipients").all().map((r) => r.address);
      assert.deepEqual(rcpts, ["u@x.test"]);
      const { stored, recount } = counters(observer);
      assert.deepEqual(stored, recount);
      assert.deepEqual(stored, ["usage x.test 1 23", "waiting atrn x.test 1 23"]);
    } finally {
      observer.close();
      await store.close();
    }
  });
});

Deno.test("a body file whose message row was undone goes with that row, once: the segment's other bodies stay (#13)", async () => {
  await withTempDataDir(async (dataDir) => {
    const big = (fill: number) => new Uint8Array(70_000).fill(fill);
    let store = new SqliteQueueStore(openDatabase(dataDir));
    try {
      const good = await store.begin({
        mailFrom: "a@src.test",
        params: {},
        recipients: [{ address: "u@x.test", domain: "x.test" }],
      });
      await good.write(big(0x61));
      await good.commit();
      // Written after `good` was synced: it may share good's segment.
      const bad = await store.begin({
        mailFrom: "b@src.test",
        params: {},
        recipients: [{ address: "z@x.test", domain: "x.test", route: "nowhere" as Route }],
      });
      await bad.write(big(0x62));
      await assert.rejects(bad.commit(), /CHECK constraint failed/);
      // Counted out once (by its row's deletion), not twice: closing removes only the segments
      // that no row names.
      await store.close();
      store = new SqliteQueueStore(openDatabase(dataDir));
      assert.deepEqual((await store.list()).map((m) => m.id), [good.id]);
      assert.deepEqual(await collectBytes(store.readBody(good.id)), big(0x61));
    } finally {
      await store.close();
    }
  });
});

/** A participant that records the rollbacks it is told of. */
class Recorder implements TxParticipant {
  readonly failures: string[] = [];
  txFailed(err: Error): void {
    this.failures.push(err.message);
  }
}

function groupOnTable(): { db: DatabaseSync; group: GroupTransaction; rows: () => unknown[] } {
  const db = new DatabaseSync(":memory:");
  db.exec("CREATE TABLE t (v TEXT PRIMARY KEY)");
  const group = new GroupTransaction(db, { onCommit: () => {} });
  const rows = () => db.prepare("SELECT v FROM t ORDER BY v").all().map((r) => r.v);
  return { db, group, rows };
}

Deno.test("writeDurable: a failed write is undone by its undo alone; the rest commits (#13)", async () => {
  const { db, group, rows } = groupOnTable();
  const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
  const remove = db.prepare("DELETE FROM t WHERE v = ?");
  const other = new Recorder();
  group.write(other, () => insert.run("other"));
  const otherDurable = group.writeDurable(other, () => insert.run("other-last"), () => {});
  const failing = new Recorder();
  let undone = 0;
  assert.throws(
    () =>
      group.writeDurable(failing, () => {
        insert.run("mine");
        // A key that exists: this insert fails, and its undo must not remove "other".
        insert.run("other");
      }, () => {
        undone++;
        remove.run("mine");
      }),
    /UNIQUE constraint failed/,
  );
  await otherDurable;
  assert.equal(undone, 1);
  assert.deepEqual(rows(), ["other", "other-last"]);
  assert.deepEqual(other.failures, []);
  assert.deepEqual(failing.failures, [], "a write that threw is not a participant");
  group.close();
  db.close();
});

Deno.test("writeDurable: when the undo fails, or SQLite rolled back, the whole transaction fails (#13)", async (t) => {
  for (
    const [name, fail] of [
      ["undo fails", (_db: DatabaseSync) => {}],
      // What SQLite does itself on SQLITE_FULL or an I/O error: the transaction is gone.
      ["SQLite rolled back", (db: DatabaseSync) => db.exec("ROLLBACK")],
    ] as const
  ) {
    await t.step(name, async () => {
      const { db, group, rows } = groupOnTable();
      const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
      const other = new Recorder();
      const otherDurable = group.writeDurable(other, () => insert.run("other"), () => {});
      let undone = 0;
      assert.throws(() =>
        group.writeDurable(new Recorder(), () => {
          insert.run("mine");
          fail(db);
          throw new Error("second statement failed");
        }, () => {
          undone++;
          throw new Error("undo failed");
        }), /second statement failed/);
      assert.equal(undone, name === "undo fails" ? 1 : 0);
      await assert.rejects(otherDurable, /rolled back \(second statement failed/);
      assert.equal(other.failures.length, 1);
      assert.equal(db.isTransaction, false);
      assert.deepEqual(rows(), []);
      // The next write opens a transaction of its own, which commits.
      await group.writeDurable(undefined, () => insert.run("later"), () => {});
      assert.deepEqual(rows(), ["later"]);
      group.close();
      db.close();
    });
  }
});

Deno.test("write: when SQLite rolled back inside a savepoint write, all of the transaction fails and the next message gets its own (#13)", async (t) => {
  // Inside: what SQLite does itself on SQLITE_FULL or an I/O error mid-statement (review rev13c
  // F1). Between writes: the transaction is gone, and the next write must not run in autocommit.
  for (const name of ["inside the write", "between writes"]) {
    await t.step(name, async () => {
      const { db, group, rows } = groupOnTable();
      const insert = db.prepare("INSERT INTO t (v) VALUES (?)");
      const earlier = new Recorder();
      group.write(earlier, () => insert.run("earlier-chunk"));
      const earlierDurable = group.writeDurable(earlier, () => insert.run("earlier"), () => {});
      const refused = new Recorder();
      if (name === "inside the write") {
        assert.throws(
          () =>
            group.write(refused, () => {
              insert.run("refused-chunk");
              db.exec("ROLLBACK");
              throw new Error("database or disk is full");
            }),
          // The cause, not "no such savepoint".
          /^Error: database or disk is full$/,
        );
      } else {
        db.exec("ROLLBACK");
      }
      const late = group.writeDurable(undefined, () => insert.run("late"), () => {});
      // Acknowledged only once a COMMIT holding them returned: earlier's rows were rolled back.
      await assert.rejects(earlierDurable, /Queue write failed and rolled back/);
      assert.equal(earlier.failures.length, 1);
      assert.deepEqual(refused.failures, [], "a write that threw is not a participant");
      // The next message went into a transaction of its own: acknowledged, and its row kept.
      await late;
      assert.equal(db.isTransaction, false);
      assert.deepEqual(rows(), ["late"]);
      group.close();
      db.close();
    });
  }
});
