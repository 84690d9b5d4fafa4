/**
 * `queue migrate [--from DIR]`: copies a SQLite data directory (messages with their bodies and
 * recipient states, users with their domains and verifiers) into the PostgreSQL database of
 * the config, for a provider that moves to several nodes (README "Scaling out"). It holds the
 * data directory's serve lock (src/queue/serve_lock.ts) while it copies, and refuses (exit 1)
 * while a serve holds it: that serve would deliver messages it copies. A message copied once
 * is never copied again (`migrated_messages`, src/queue/pg/_import.ts), even once the nodes
 * delivered it, so a cut-off run can be repeated; users are copied only into a database that
 * has none yet. A failure report still owed stays owed, a delay notice sent stays sent. Before
 * the first copy it marks the SQLite queue (src/queue/moved_mark.ts): a SQLite serve refuses
 * it from then on, until `--clear-mark`. It reads the queue a page of ids at a time, so a
 * queue larger than its memory is copied too. Exit 0, 1 runtime failure, 2 usage.
 */
import { join } from "../posix_path.ts";
import { DatabaseSync } from "node:sqlite";
import { CredentialStore } from "../auth/store.ts";
import { NULL_LOGGER } from "../observe/log.ts";
import { DATABASE_FILE, openDatabase } from "../queue/db.ts";
import { clearMoved, markMoved, movedAt } from "../queue/moved_mark.ts";
import { refusedIdsIn } from "../queue/_refused.ts";
import { editAuthSnapshot, loadTables, readTablesLike } from "../queue/pg/auth_mirror.ts";
import { PgQueueStore } from "../queue/pg/store.ts";
import { DataDirBusyError, lockDataDir, type ServeLock } from "../queue/serve_lock.ts";
import { SqliteQueueStore } from "../queue/sqlite_store.ts";
import type { QueuedMessage } from "../queue/types.ts";
import type { CliIo } from "./io.ts";
import { parseFlags, usageError } from "./_args.ts";
import { errorText } from "../errors.ts";

const USAGE = "Usage: queue migrate [--from DATA_DIR] [--clear-mark]";

/** Runs `queue migrate …`; returns the exit code. */
export async function migrateCommand(argv: readonly string[], io: CliIo): Promise<number> {
  let from: string;
  let isClear: boolean;
  try {
    const { values, positionals } = parseFlags(argv, {
      from: { type: "string" },
      "clear-mark": { type: "boolean" },
    });
    if (positionals.length > 0) throw new Error(`Unexpected argument "${positionals[0]}"`);
    from = values.from ?? io.dataDir;
    isClear = values["clear-mark"] === true;
  } catch (err) {
    return usageError(io, errorText(err), USAGE);
  }
  if (isClear) return await clearMark(from, io);
  const pg = io.storage?.backend === "postgres" ? io.storage.postgres : undefined;
  if (pg === undefined) {
    io.stderr(
      "error: queue migrate copies into PostgreSQL: set queue.backend: postgres and " +
        "queue.postgres in the config first\n",
    );
    return 2;
  }
  const file = join(from, DATABASE_FILE);
  try {
    await Deno.stat(file);
  } catch {
    io.stderr(`error: Cannot migrate: no queue database "${file}"\n`);
    return 1;
  }
  let lock: ServeLock;
  try {
    lock = await lockDataDir(from, "queue migrate");
  } catch (err) {
    io.stderr(`error: Cannot migrate: ${busyText(err, from)}\n`);
    return 1;
  }
  let source: SqliteQueueStore | undefined;
  let target: PgQueueStore | undefined;
  try {
    const db = openDatabase(from);
    source = new SqliteQueueStore(db, { removeOrphans: false });
    const owed = db.prepare("SELECT recipient_id FROM report_pending WHERE message_id = ?");
    const notified = db.prepare("SELECT delay_notified FROM messages WHERE id = ?");
    target = await PgQueueStore.open(
      { url: pg.url, passwordFile: pg.passwordFile, max: 2, applicationName: "odmr-relay migrate" },
      { nodeId: `migrate-${Deno.pid}`, logger: NULL_LOGGER },
    );
    // Refused to their senders (who send them again): never copied; the old queue keeps them.
    const refused = refusedIdsIn(from);
    const users = await copyUsers(file, target);
    // Before the first copy, durably: a SQLite serve on `from` refuses from now on.
    markMoved(db, Date.now());
    let copied = 0;
    let skipped = 0;
    let left = 0;
    for await (const message of messagesOf(db, source)) {
      if (refused.has(message.id)) {
        left++;
        continue;
      }
      const reportPending = new Set(owed.all(message.id).map((r) => Number(r.recipient_id)));
      const body = source.readBody(message.id);
      const delayNotified = notified.get(message.id)?.delay_notified !== 0;
      if (await target.importMessage(message, { body, reportPending, delayNotified })) copied++;
      else skipped++;
    }
    io.stdout(
      `Copied ${copied} message(s) (${skipped} already copied${
        left === 0
          ? ""
          : `; ${left} refused to ${left === 1 ? "its sender" : "their senders"}, left out`
      }) and ${
        users === undefined ? "no users (PostgreSQL already has users)" : `${users} user(s)`
      } from "${from}"\n`,
    );
    return 0;
  } catch (err) {
    io.stderr(`error: Cannot migrate the queue: ${errorText(err)}\n`);
    return 1;
  } finally {
    try {
      await source?.close();
      await target?.close();
    } finally {
      lock.release();
    }
  }
}

/**
 * `--clear-mark`: takes the mark of a migrate off `from`'s queue (moved_mark.ts), so that a
 * SQLite serve uses it again, under the serve lock. Exit 0 (also when there was none), or 1.
 */
async function clearMark(from: string, io: CliIo): Promise<number> {
  const file = join(from, DATABASE_FILE);
  try {
    await Deno.stat(file);
  } catch {
    io.stderr(`error: Cannot clear the mark: no queue database "${file}"\n`);
    return 1;
  }
  let lock: ServeLock;
  try {
    lock = await lockDataDir(from, "queue migrate");
  } catch (err) {
    io.stderr(`error: Cannot clear the mark: ${busyText(err, from)}\n`);
    return 1;
  }
  try {
    const db = openDatabase(from);
    try {
      if (movedAt(db) === undefined || !clearMoved(db)) {
        io.stdout(`No mark of queue migrate on "${from}": a SQLite serve uses it as it is\n`);
      } else {
        io.stdout(
          `Cleared the mark of queue migrate on "${from}": a SQLite serve on it delivers its ` +
            `queue again, the messages copied to PostgreSQL included\n`,
        );
      }
      return 0;
    } finally {
      db.close();
    }
  } catch (err) {
    io.stderr(`error: Cannot clear the mark: ${errorText(err)}\n`);
    return 1;
  } finally {
    lock.release();
  }
}

/** Message ids per page of the copy: what it holds of the queue's list at a time. */
const COPY_PAGE = 100;

/**
 * The messages of `source` (on `db`) with a recipient, in id (arrival) order, read a page of
 * ids at a time and each message only when its turn comes: the list is never held whole.
 */
async function* messagesOf(
  db: DatabaseSync,
  source: SqliteQueueStore,
): AsyncGenerator<QueuedMessage> {
  const page = db.prepare("SELECT id FROM messages WHERE id > ? ORDER BY id LIMIT ?");
  let after = "";
  for (;;) {
    const ids = page.all(after, COPY_PAGE).map((r) => String(r.id));
    for (const id of ids) {
      const message = await source.get(id);
      if (message !== undefined && message.recipients.length > 0) yield message;
    }
    if (ids.length < COPY_PAGE) return;
    after = ids[ids.length - 1] ?? after;
  }
}

/** The refusal's text when a serve holds `dir`'s lock, else the lock's own error. */
function busyText(err: unknown, dir: string): string {
  if (!(err instanceof DataDirBusyError)) return errorText(err);
  const pid = err.holder === undefined ? "" : ` (pid ${err.holder})`;
  if (err.by === "queue migrate") {
    return `another queue migrate${pid} is copying data_dir "${dir}" (it holds ` +
      `${err.lockFile}): wait for it to end`;
  }
  const who = `a serve${pid}`;
  return `${who} is running on data_dir "${dir}" (it holds ${err.lockFile}): stop it ` +
    `first (it would deliver what migrate copies), then run queue migrate again`;
}

/** Copies the credential tables into an empty snapshot; undefined when users already exist. */
async function copyUsers(file: string, target: PgQueueStore): Promise<number | undefined> {
  const copy = new DatabaseSync(":memory:");
  const credentials = new CredentialStore(copy);
  const source = new DatabaseSync(file, { readOnly: true });
  try {
    const rows = readTablesLike(copy, source);
    return await editAuthSnapshot(target.pool, copy, () => {
      if (credentials.listUsers().length > 0) return Promise.resolve(undefined);
      loadTables(copy, rows);
      return Promise.resolve(credentials.listUsers().length);
    }, target.callDeadlineMs);
  } finally {
    source.close();
    copy.close();
  }
}
