/**
 * Every call serve and the `user` commands make on the store's pool answers within its deadline
 * when the connection it goes out on is silent (the server or route stopped answering, the
 * connection stays open), and the pool then recovers: the health check, the users' copy
 * (refresh, read, edit), the ATRN timestamps, the shared key, DKIM key reads and a body's
 * chunk inserts (their own pool). Before, each waited for as long as TCP kept the connection
 * (forever on loopback): serve's start, a `user` command or a sender's DATA hung, and /healthz
 * kept failing on the connection it never dropped.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { CredentialStore } from "../../src/auth/store.ts";
import { PgDkimKeys } from "../../src/dkim/pg_keys.ts";
import { AuthMirror, editAuthSnapshot, readAuthSnapshot } from "../../src/queue/pg/auth_mirror.ts";
import { connectPostgres } from "../../src/queue/pg/connect.ts";
import { loadSharedKey } from "../../src/queue/pg/shared_key.ts";
import { PG_CHUNK_BYTES, type PgQueueStore } from "../../src/queue/pg/store.ts";
import { PgUserState } from "../../src/queue/pg/user_state.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import {
  bounded,
  proxyOf,
  shortDeadlineTest,
  triedOnce,
  untilAnswered,
  withShortDeadline,
} from "../_helpers/pg_short_deadline.ts";
import { postgresTest } from "../_helpers/postgres.ts";

/** A call of the pool, answering "ok" (or failing). */
type Call = (store: PgQueueStore, copy: DatabaseSync) => Promise<string>;

const ok = () => "ok";

/** Writes one full chunk of a body (inserted at once on the chunk pool), then aborts. */
async function writeChunk(store: PgQueueStore): Promise<string> {
  const writer = await store.begin({
    mailFrom: "s@example.net",
    params: {},
    recipients: [{ address: "u@example.org", domain: "example.org" }],
  });
  try {
    await writer.write(new Uint8Array(PG_CHUNK_BYTES));
    return "ok";
  } finally {
    await writer.abort();
  }
}

const CALLS: readonly (readonly [string, string, Call, RegExp])[] = [
  ["the health check", "health", (s) => s.ping().then(ok), /health check: .* within 3000 ms/],
  [
    "the users' read of a `user` command",
    "users_read",
    (s, copy) => readAuthSnapshot(s.pool, copy, s.callDeadlineMs).then(ok),
    /users: .* within 500 ms/,
  ],
  [
    "the users' edit of a `user` command",
    "users_edit",
    (s, copy) => editAuthSnapshot(s.pool, copy, () => Promise.resolve("ok"), s.callDeadlineMs),
    /users' edit: .* within 500 ms/,
  ],
  [
    "the ATRN timestamps' load",
    "atrn_state",
    (s) => PgUserState.open(s.pool, NULL_LOGGER, s.callDeadlineMs).then(ok),
    /ATRN timestamps: .* within 500 ms/,
  ],
  [
    "the shared key's load",
    "shared_key",
    (s) => loadSharedKey(s.pool, "test_key", 32, s.callDeadlineMs).then(ok),
    /shared key: .* within 500 ms/,
  ],
  [
    "a DKIM key read",
    "dkim",
    (s) => new PgDkimKeys(s.pool, Date.now, s.callDeadlineMs).keysFor("example.org").then(ok),
    /DKIM keys: .* within 500 ms/,
  ],
];

await shortDeadlineTest(
  "a body chunk's insert on a connection gone silent fails within its deadline: the sender is answered (#13)",
  { db: "stall_chunk", proxy: true },
  async (t) => {
    // The chunk pool's first insert opens its first connection, which then goes silent.
    const stalled = proxyOf(t).stallWhenSent("INSERT INTO message_chunks");
    const first = await triedOnce(() => writeChunk(t.store));
    assert.equal(await bounded(stalled.then(() => "stalled")), "stalled");
    assert.match(first, /^failed: body chunk: no answer from PostgreSQL within 500 ms/);
    assert.match(await untilAnswered(() => writeChunk(t.store)), /(^| \| )ok$/);
  },
);

// One cluster, a fresh database and store for each call.
await postgresTest(
  "each call on the pool, on a connection gone silent, fails within its deadline; the next one answers (#13)",
  async (pg, test) => {
    for (const [what, db, call, late] of CALLS) {
      await test.step(
        what,
        () =>
          withShortDeadline(pg, { db: `stall_${db}`, proxy: true, max: 1 }, async (t) => {
            const copy = new DatabaseSync(":memory:");
            new CredentialStore(copy);
            try {
              // Once answered: the pool has its connection open.
              assert.equal(await bounded(call(t.store, copy)), "ok");
              assert.ok(proxyOf(t).stallAll() >= 1);
              const first = await triedOnce(() => call(t.store, copy));
              assert.match(first, late);
              // Its connection is dropped once silent past the pool's longest statement; a call
              // asked before that goes out on it and fails too.
              assert.match(await untilAnswered(() => call(t.store, copy)), /(^| \| )ok$/);
            } finally {
              copy.close();
            }
          }),
      );
    }
  },
);

await shortDeadlineTest(
  "the users' copy of serve: a refresh on a connection gone silent fails within its deadline, and later ones still follow the users (#13)",
  { db: "stall_users_refresh", proxy: true, max: 1 },
  async (t) => {
    const copy = new DatabaseSync(":memory:");
    const credentials = new CredentialStore(copy);
    const mirror = await AuthMirror.start(t.store.pool, copy, NULL_LOGGER, t.store.callDeadlineMs);
    try {
      assert.ok(proxyOf(t).stallAll() >= 1);
      const refresh = () => mirror.refresh().then(ok);
      const first = await triedOnce(refresh);
      assert.match(first, /users' version: .* within 500 ms/);
      // A user added meanwhile by a `user` command (on its own connection, not silent).
      const tool = await connectPostgres({ url: t.url, max: 1 });
      const editor = new DatabaseSync(":memory:");
      const editing = new CredentialStore(editor);
      try {
        await editAuthSnapshot(tool, editor, () => editing.addUser("alice", "pw", ["example.org"]));
      } finally {
        editor.close();
        await tool.end({ timeout: 5 });
      }
      // Before, the stuck refresh was shared by every later one: the copy never changed again.
      assert.match(
        await untilAnswered(async () => {
          await refresh();
          if (credentials.ownerOf("example.org") !== "alice") throw new Error("alice not seen");
          return "ok";
        }),
        /(^| \| )ok$/,
      );
      // serve's stop, with its LISTEN connection silent too (before: it waited for good).
      assert.equal(await bounded(mirror.stop().then(() => "stopped")), "stopped");
    } finally {
      await bounded(mirror.stop().then(() => "stopped"));
      copy.close();
    }
  },
);
