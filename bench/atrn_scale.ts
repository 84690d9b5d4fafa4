// ATRN cost against queue size (issue 13 item 2): a domain with 30 messages waits while other
// domains hold 0 / 50k / 200k / 1M messages, inserted through the queue store (not SMTP, to
// keep it short). Timed: the store's claim + first message, `list --domain`, the gauges'
// domainStats, and a real ATRN against `serve` until the first MAIL FROM reaches the customer.

import { openDatabase } from "../src/queue/db.ts";
import { SqliteQueueStore } from "../src/queue/sqlite_store.ts";
import type { NewMessage, QueueStore } from "../src/queue/types.ts";
import type { BenchContext } from "./ingest.ts";
import { runNullCustomer } from "./_null_customer.ts";
import { sleep } from "./_proc.ts";
import { BENCH_PASSWORD, BENCH_USER, Serve } from "./_serve.ts";
import { fmtRate, naCell, type Table } from "./_table.ts";

/** Messages queued for other domains at each step (÷ scale under --quick). */
const OTHERS = [0, 50_000, 200_000, 1_000_000];
/** Messages of the domain that says ATRN. */
const TARGET_MESSAGES = 30;
const TARGET = "atrn-target.example";
/** Other domains the filler is spread over. */
const OTHER_DOMAINS = 100;
/** Messages committed together while filling (one group COMMIT each). */
const FILL_BATCH = 1000;
/** Timed repetitions per cell (median shown). */
const REPEAT = 5;
const BODY = new TextEncoder().encode(
  "From: filler@sender.example\r\nSubject: filler\r\n\r\n" + "x".repeat(200) + "\r\n",
);

/** Runs the benchmark; one table. */
export async function atrnScaleBench(ctx: BenchContext): Promise<Table[]> {
  const table: Table = {
    title: `ATRN cost vs. other domains' mail (${TARGET_MESSAGES} messages for the ATRN domain)`,
    headers: [
      "others queued",
      "fill msg/s",
      "claim + 1st message",
      "list --domain",
      "domainStats",
      "ATRN → 1st MAIL FROM",
    ],
    rows: [],
    notes: [
      `Filler: ${OTHER_DOMAINS} other domains, one recipient and ${BODY.length} bytes each, put ` +
      `through SqliteQueueStore in groups of ${FILL_BATCH}; the ${TARGET_MESSAGES} messages ` +
      "of the ATRN domain are re-queued after each fill (newest: the worst case for a walk " +
      "in arrival order).",
      `Store columns: in the benchmark process, median of ${REPEAT}. ATRN column: a running ` +
      "`serve` on the same file, bench/_null_customer.ts from writing ATRN to reading the " +
      `first MAIL FROM (AUTH not included), median of ${REPEAT} (min–max). Goal: ≤ 20 ms ` +
      "with 1M elsewhere.",
    ],
  };
  const serve = await Serve.start({ dir: ctx.dir, domain: TARGET });
  ctx.defer(() => serve.stop());
  const dataDir = `${serve.root}/data`;
  let have = 0;
  const steps = OTHERS.map((n) => Math.floor(n / ctx.scale));
  for (const wanted of steps) {
    const row = [String(wanted)];
    try {
      const db = openDatabase(dataDir);
      const store = new SqliteQueueStore(db, { removeOrphans: false });
      try {
        const t0 = performance.now();
        await fill(store, wanted - have, have);
        const seconds = (performance.now() - t0) / 1000;
        row.push(wanted > have ? fmtRate((wanted - have) / seconds) : "-");
        have = wanted;
        await store.deleteDomain(TARGET);
        for (let i = 0; i < TARGET_MESSAGES; i++) await put(store, TARGET, i);
        row.push(fmtMs(await median(() => firstClaim(store))));
        row.push(fmtMs(await median(() => timed(() => store.list({ domain: TARGET })))));
        row.push(fmtMs(await median(() => timed(() => store.domainStats()))));
      } finally {
        await store.close();
      }
      // Leave serve a small WAL to read, as a long-running server would have.
      const raw = openDatabase(dataDir);
      raw.prepare("PRAGMA wal_checkpoint(TRUNCATE)").get();
      raw.close();
      row.push(await atrnToFirstMail(serve));
    } catch (e) {
      while (row.length < table.headers.length) row.push(naCell(e));
    }
    table.rows.push(row);
    if (wanted === steps[steps.length - 1]) {
      ctx.summary.set("atrnScale", `${row[row.length - 1]} with ${wanted} elsewhere`);
    }
  }
  return [table];
}

async function fill(store: QueueStore, count: number, offset: number): Promise<void> {
  for (let done = 0; done < count; done += FILL_BATCH) {
    const batch: Promise<void>[] = [];
    for (let i = done; i < Math.min(count, done + FILL_BATCH); i++) {
      const n = offset + i;
      batch.push(put(store, `d${n % OTHER_DOMAINS}.other.example`, n));
    }
    await Promise.all(batch);
  }
}

async function put(store: QueueStore, domain: string, n: number): Promise<void> {
  const message: NewMessage = {
    mailFrom: "filler@sender.example",
    params: {},
    recipients: [{ address: `u${n}@${domain}`, domain }],
  };
  const writer = await store.begin(message);
  await writer.write(BODY);
  await writer.commit();
}

/** Claim the domain, take its first message, give it back: what ATRN costs in the store. */
async function firstClaim(store: QueueStore): Promise<number> {
  const t0 = performance.now();
  const claim = await store.claim([TARGET], { owner: "bench", leaseSeconds: 60 });
  if (claim.kind !== "claimed") throw new Error(`claim was ${claim.kind}`);
  try {
    for await (const _ of claim.lease.messages()) break;
    return performance.now() - t0;
  } finally {
    await claim.lease.release();
  }
}

async function atrnToFirstMail(serve: Serve): Promise<string> {
  if (serve.odmrPort === undefined) return "n/a (serve reported no ODMR listener)";
  const times: number[] = [];
  for (let run = 0; run < REPEAT; run++) {
    // The previous session's lease goes when serve notices the hang-up: retry a 451 briefly.
    for (let attempt = 0;; attempt++) {
      const r = await runNullCustomer({
        port: serve.odmrPort,
        user: BENCH_USER,
        password: BENCH_PASSWORD,
        domain: TARGET,
        timeoutMs: 60_000,
        stopAtFirstMail: true,
      });
      if (r.firstMailMs !== undefined) {
        times.push(r.firstMailMs);
        break;
      }
      if (!r.atrnReply.startsWith("451") || attempt >= 50) {
        throw new Error(`ATRN got "${r.atrnReply}" and no MAIL FROM`);
      }
      await sleep(20);
    }
  }
  times.sort((a, b) => a - b);
  return `${fmtMs(times[Math.floor(times.length / 2)] ?? NaN)} ` +
    `(${fmtMs(times[0] ?? NaN)}–${fmtMs(times[times.length - 1] ?? NaN)})`;
}

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

async function median(fn: () => Promise<number>): Promise<number> {
  const times: number[] = [];
  for (let i = 0; i < REPEAT; i++) times.push(await fn());
  times.sort((a, b) => a - b);
  return times[Math.floor(times.length / 2)] ?? NaN;
}

function fmtMs(ms: number): string {
  return ms >= 100 ? `${ms.toFixed(0)} ms` : `${ms.toFixed(1)} ms`;
}
