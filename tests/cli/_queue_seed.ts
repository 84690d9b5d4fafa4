/**
 * Seeds a queue the way `serve` fills it (messages at chosen times, recipients failed by a
 * customer's 5xx, recipients expired by maintenance, last collections) for the `queue` and
 * `user` command tests. A target is a data directory (SQLite) or a data directory with a
 * PostgreSQL database (tests/cli/_backends.ts).
 */
import { openDatabase } from "../../src/queue/db.ts";
import { connectPostgres } from "../../src/queue/pg/connect.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { QueueStore } from "../../src/queue/types.ts";
import { UserStateStore } from "../../src/queue/user_state.ts";
import { type QueueTarget, targetOf, type Where } from "./_io.ts";
import { fileURLToPath } from "node:url";
import { maintenanceOptions, queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));

function pgUrlOf(target: QueueTarget): string | undefined {
  return target.storage?.backend === "postgres" ? target.storage.postgres?.url : undefined;
}

/** A store on the target with a fake clock (a PostgreSQL one as a node called "seed"). */
async function openStore(
  where: Where,
  now: () => number,
  chunkBytes?: number,
): Promise<QueueStore> {
  const target = targetOf(where);
  const opts = { now, ...(chunkBytes === undefined ? {} : { chunkBytes }) };
  const url = pgUrlOf(target);
  if (url === undefined) return new SqliteQueueStore(openDatabase(target.dataDir), opts);
  return await PgQueueStore.open({ url, max: 2 }, { nodeId: "seed", ...opts });
}

/** One message to seed. */
export interface SeedMessage {
  readonly from?: string;
  readonly to: readonly string[];
  /** Received at this time (ms since the epoch). */
  readonly at: number;
  readonly body?: string | Uint8Array;
  /** Recipients (addresses) a delivery attempt failed permanently, with this reply. */
  readonly failed?: readonly string[];
  /** Recipients (addresses) on route "mx" (the outbound queue); the others are "atrn". */
  readonly mx?: readonly string[];
}

const DEFAULT_BODY = "Subject: seeded\r\nFrom: a@example.net\r\n\r\nbody\r\n";

/** Queues `messages`, then fails the listed recipients as a drain would; returns the ids. */
export async function seedQueue(
  where: Where,
  messages: readonly SeedMessage[],
  opts: { failReply?: string; chunkBytes?: number } = {},
): Promise<string[]> {
  let clock = 0;
  const store = await openStore(where, () => clock, opts.chunkBytes);
  try {
    const ids: string[] = [];
    for (const m of messages) {
      clock = m.at;
      ids.push(
        await queueMessage(store, {
          from: m.from ?? "s@example.net",
          to: m.to.map((a) => rcpt(a, m.mx?.includes(a) ? { route: "mx" } : {})),
          body: m.body ?? DEFAULT_BODY,
        }),
      );
    }
    await failOutbound(store, messages, clock, opts.failReply);
    for (const [i, m] of messages.entries()) {
      const failed = (m.failed ?? []).filter((a) => !m.mx?.includes(a));
      if (failed.length === 0) continue;
      const domains = [...new Set(failed.map((a) => a.slice(a.indexOf("@") + 1)))];
      const claim = await store.claim(domains, { owner: "seed", leaseSeconds: 60 });
      if (claim.kind !== "claimed") throw new Error(`seed: cannot claim ${domains}: ${claim.kind}`);
      const message = await store.get(ids[i] ?? "");
      const settlements = (message?.recipients ?? [])
        .filter((r) => failed.includes(r.address))
        .map((r) => ({
          recipientId: r.id,
          messageId: ids[i] ?? "",
          outcome: "failed" as const,
          reply: opts.failReply ?? "550 5.1.1 no such user",
        }));
      await claim.lease.settle(settlements);
      await claim.lease.release();
    }
    return ids;
  } finally {
    await store.close();
  }
}

/**
 * Fails the listed route-"mx" recipients as the outbound worker does after a 5xx at their MX:
 * each due destination is claimed once (its lease held until all are claimed), then released.
 */
async function failOutbound(
  store: QueueStore,
  messages: readonly SeedMessage[],
  now: number,
  failReply = "550 5.1.1 no such user",
): Promise<void> {
  const failed = new Set(
    messages.flatMap((m) => (m.failed ?? []).filter((a) => m.mx?.includes(a))),
  );
  if (failed.size === 0) return;
  const leases = [];
  for (let guard = 0; guard < 1000; guard++) {
    const lease = await store.claimOutbound({ owner: "seed", leaseSeconds: 60, now });
    if (lease === undefined) break;
    leases.push(lease);
    for await (const message of lease.messages()) {
      await lease.settle(
        message.recipients.filter((r) => failed.has(r.address)).map((r) => ({
          recipientId: r.id,
          messageId: message.id,
          outcome: "failed" as const,
          reply: failReply,
        })),
      );
    }
  }
  for (const lease of leases) await lease.release();
}

/** Runs one maintenance pass at `atMs` with `maxAgeMs` for every domain (expires old mail). */
export async function expireAt(where: Where, atMs: number, maxAgeMs: number): Promise<void> {
  const store = await openStore(where, () => atMs);
  try {
    await store.maintain(maintenanceOptions({ maxAgeMs: () => maxAgeMs }));
  } finally {
    await store.close();
  }
}

/** Records a successful collection (ATRN) of `user` at `atMs`, as `serve` does. */
export async function recordCollection(where: Where, user: string, atMs: number): Promise<void> {
  const target = targetOf(where);
  const url = pgUrlOf(target);
  if (url === undefined) {
    const db = openDatabase(target.dataDir);
    try {
      new UserStateStore(db).recordAtrnSuccess(user, atMs);
    } finally {
      db.close();
    }
    return;
  }
  // The table the nodes write (src/queue/pg/user_state.ts); the store above created it.
  await (await openStore(target, Date.now)).close();
  const sql = await connectPostgres({ url, max: 1 });
  try {
    await sql`INSERT INTO user_state ("user", last_atrn_success) VALUES (${user}, ${atMs})`;
  } finally {
    await sql.end({ timeout: 1 });
  }
}

/**
 * Runs `deno run -A main.ts ARGS` from the project root, stdin a pipe holding `stdin` (so not a
 * terminal) or closed; returns the exit code, raw stdout and stderr as text.
 */
export async function runMain(args: readonly string[], stdin?: string) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "main.ts", ...args],
    cwd: ROOT,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(new TextEncoder().encode(stdin));
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  return { code, stdout, stderr: new TextDecoder().decode(stderr) };
}
