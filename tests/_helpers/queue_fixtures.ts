/**
 * Queue fixtures for store tests: recipients from their addresses, one message queued whole the
 * way the receiver does it, and maintenance options with the defaults most tests want; for the
 * SQLite store's body files, a store on a fresh data directory and what its rows and folder hold.
 */
import { DatabaseSync } from "node:sqlite";
import { applyMigrations, DATABASE_FILE, openDatabase } from "../../src/queue/db.ts";
import { QUEUE_MIGRATIONS } from "../../src/queue/_schema.ts";
import { BODY_DIR, type BodySync } from "../../src/queue/_body_files.ts";
import { SqliteQueueStore, type SqliteQueueStoreOptions } from "../../src/queue/sqlite_store.ts";
import type {
  Lease,
  MaintenanceOptions,
  MessageParams,
  NewRecipient,
  QueueStore,
  Settlement,
} from "../../src/queue/types.ts";
import { withTempDataDir } from "./temp_db.ts";

const DAY_MS = 86_400_000;

/**
 * Makes the queue in `dataDir` as a program of before schema step `steps + 1` left it (its first
 * `steps` migrations), with the rows `statements` write, then closes it.
 */
export function oldQueue(dataDir: string, steps: number, ...statements: string[]): void {
  const old = openDatabase(dataDir);
  try {
    applyMigrations(old, "queue", QUEUE_MIGRATIONS.slice(0, steps));
    for (const sql of statements) old.exec(sql);
  } finally {
    old.close();
  }
}

/** The settlement of recipient `recipientId` of message `messageId` as delivered ("250 ok"). */
export function delivered(messageId: string, recipientId: number): Settlement {
  return { recipientId, messageId, outcome: "delivered", reply: "250 ok" };
}

/** A recipient of `address` (its domain is what follows the "@"); `extra` adds route, notify, … */
export function rcpt(address: string, extra: Partial<NewRecipient> = {}): NewRecipient {
  return { address, domain: address.slice(address.indexOf("@") + 1), ...extra };
}

/** One message to queue. */
export interface MessageSpec {
  /** The reverse-path; default "" (a bounce). */
  readonly from?: string;
  /** The user who submitted it (submission); default none (received mail). */
  readonly submitter?: string;
  /** Addresses (see `rcpt`) or whole recipients. */
  readonly to: readonly (string | NewRecipient)[];
  readonly params?: MessageParams;
  /** Default: a short text message. */
  readonly body?: string | Uint8Array;
}

/** Queues one message: begin, write the body, commit. Returns its id. */
export async function queueMessage(store: QueueStore, m: MessageSpec): Promise<string> {
  const writer = await store.begin({
    mailFrom: m.from ?? "",
    ...(m.submitter === undefined ? {} : { submitter: m.submitter }),
    params: m.params ?? {},
    recipients: m.to.map((r) => typeof r === "string" ? rcpt(r) : r),
  });
  const body = m.body ?? "Subject: t\r\n\r\nbody\r\n";
  await writer.write(typeof body === "string" ? new TextEncoder().encode(body) : body);
  await writer.commit();
  return writer.id;
}

/**
 * Maintenance options: host mx.test, mail kept 30 days, no local domain, outbound mail 5 days,
 * a delay notice after 4 hours, no reports to foreign senders; `overrides` change single ones.
 */
export function maintenanceOptions(
  overrides: Partial<MaintenanceOptions> = {},
): MaintenanceOptions {
  return {
    hostname: "mx.test",
    maxAgeMs: () => 30 * DAY_MS,
    isLocalDomain: () => false,
    outboundMaxAgeMs: 5 * DAY_MS,
    delayNoticeMs: 4 * 3_600_000,
    foreignBounceBudget: 0,
    ...overrides,
  };
}

/** Settles the first recipient of every other message `lease` offers as failed (550), from the `start`-th on. */
export async function failEveryOther(lease: Lease, start: 0 | 1): Promise<void> {
  const failed = [];
  let n = 0;
  for await (const m of lease.messages()) {
    const r = m.recipients[0];
    if (n++ % 2 === start && r !== undefined) {
      failed.push({
        recipientId: r.id,
        messageId: m.id,
        outcome: "failed" as const,
        reply: "550 no",
      });
    }
  }
  await lease.settle(failed);
}

/** `withStore`'s options: the store's, and whether its close may fail. */
export interface StoreFixtureOptions extends SqliteQueueStoreOptions {
  /**
   * The test fails a WAL sync on purpose: nothing is synced at close then (sync_failure_test.ts)
   * and close() rejects, as expected.
   */
  readonly closeMayReject?: boolean;
}

/**
 * Runs `fn` with a SQLite store on a fresh data directory, and closes the store after it. `db` is
 * the store's own connection, for a test that reads its settings or injects faults into it.
 */
export async function withStore(
  fn: (store: SqliteQueueStore, dataDir: string, db: DatabaseSync) => Promise<void> | void,
  opts: StoreFixtureOptions = {},
): Promise<void> {
  const { closeMayReject = false, ...storeOpts } = opts;
  await withTempDataDir(async (dataDir) => {
    const db = openDatabase(dataDir);
    const store = new SqliteQueueStore(db, storeOpts);
    try {
      await fn(store, dataDir, db);
    } finally {
      const closing = store.close();
      await (closeMayReject ? closing.catch(() => {}) : closing);
    }
  });
}

/** `n` bytes of a pattern that differs with `seed` and from one KiB to the next. */
export function patternBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed + (i >> 10)) & 0xff;
  return out;
}

/**
 * The row's `body_file` of message `id`, `<segment>@<offset>+<length>` (null: the body is in SQLite),
 * read on a connection of its own.
 */
export function bodyNameOf(dataDir: string, id: string): string | null {
  const raw = new DatabaseSync(`${dataDir}/${DATABASE_FILE}`);
  try {
    const name = raw.prepare("SELECT body_file FROM messages WHERE id = ?").get(id)?.body_file;
    return typeof name === "string" ? name : null;
  } finally {
    raw.close();
  }
}

/** The segment file that holds message `id`'s body; throws if its body is not in a file. */
export function segmentOf(dataDir: string, id: string): string {
  const name = bodyNameOf(dataDir, id);
  if (name === null) throw new Error(`message ${id} has no body file`);
  return name.split("@")[0] ?? name;
}

/** The files in the body folder that hold bytes (spares are empty), sorted. */
export function filledBodyFiles(dataDir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${dataDir}/${BODY_DIR}`)) {
    try {
      if (Deno.statSync(`${dataDir}/${BODY_DIR}/${e.name}`).size > 0) out.push(e.name);
    } catch (err) {
      // Unlinked (off the loop) between the listing and the stat: gone.
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  return out.sort();
}

/** A body sync that fails one data sync with "EIO (test)" once armed (`armed`: from the start). */
export function failOnceSync(armed = false): { sync: BodySync; arm: () => void } {
  let isArmed = armed;
  const sync: BodySync = async (what, run) => {
    if (what === "data" && isArmed) {
      isArmed = false;
      throw new Error("EIO (test)");
    }
    await run();
  };
  return { sync, arm: () => isArmed = true };
}

/** How long `eventually` polls: `tries` waits of `everyMs` each. */
export interface PollOptions {
  /** Default 100. */
  readonly tries?: number;
  /** Default 10. */
  readonly everyMs?: number;
}

/**
 * Polls `check` until it holds, at most `tries` waits of `everyMs` (by default 100 × 10 ms), for
 * work done off the loop (body files unlinked, a checkpoint after a pause); returns whether it held.
 */
export async function eventually(check: () => boolean, opts: PollOptions = {}): Promise<boolean> {
  const { tries = 100, everyMs = 10 } = opts;
  for (let i = 0; i < tries && !check(); i++) await new Promise((r) => setTimeout(r, everyMs));
  return check();
}
