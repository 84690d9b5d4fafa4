/**
 * The outbound worker over a real SQLite queue, a real DNS server (dnsmasq) and byte-exact
 * capture servers on 127.x.y.4x:25 (loopback(): this process's own addresses): delivery over
 * one connection with DKIM, failure at once for a 5xx (the report hook after the settle), a
 * 4xx deferred by the (short, configured) schedule and delivered when due without a wake-up,
 * per-recipient log lines. The worker sleeps up to a minute here: everything sooner is a
 * wake-up or the next due time.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { OutboundWorker } from "../../src/outbound/worker.ts";
import type { FailedRecipient } from "../../src/outbound/worker.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type {
  QueuedMessage,
  QueuedRecipient,
  QueueStore,
  Settlement,
} from "../../src/queue/types.ts";
import { createLogger, NULL_LOGGER } from "../../src/observe/log.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { verifyDkim } from "../_helpers/dkim.ts";
import {
  deliveryOptions,
  exampleOrgKey,
  loopback,
  startMxDns,
} from "../_helpers/outbound_world.ts";
import { parseLogLine } from "../_helpers/log_lines.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";
import { until } from "../_helpers/wait_until.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const RETRY_MS = 400;

/**
 * `store` as the worker sees it, with `afterSettle` run inside each outbound lease's settle,
 * once the settlement is recorded and before the worker hears so: the lease (and so the
 * domain) is held meanwhile, so what `afterSettle` reads is the state that settle left, not
 * whatever a later retry made of it by the time a polling test looks.
 */
function watchingSettles(
  store: QueueStore,
  afterSettle: (results: readonly Settlement[]) => Promise<void>,
): QueueStore {
  return new Proxy(store, {
    get(target, key) {
      if (key === "claimOutbound") {
        return async (opts: Parameters<QueueStore["claimOutbound"]>[0]) => {
          const lease = await target.claimOutbound(opts);
          if (lease === undefined) return undefined;
          return new Proxy(lease, {
            get(l, k) {
              if (k === "settle") {
                return async (results: readonly Settlement[]) => {
                  await l.settle(results);
                  await afterSettle(results);
                };
              }
              const v = Reflect.get(l, k, l);
              return typeof v === "function" ? v.bind(l) : v;
            },
          });
        };
      }
      const v = Reflect.get(target, key, target);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

async function queueMx(
  store: QueueStore,
  to: readonly string[],
  body: string,
  from = "alice@example.org",
): Promise<string> {
  const writer = await store.begin({
    mailFrom: from,
    params: {},
    recipients: to.map((address) => ({
      address,
      domain: address.slice(address.indexOf("@") + 1),
      route: "mx" as const,
    })),
  });
  await writer.write(enc(body));
  await writer.commit();
  return writer.id;
}

await toolTest("OutboundWorker: claims, delivers over one connection, settles, retries", [
  "dnsmasq",
  "dkimverify",
], async (t) => {
  if (!canBindPort25("OutboundWorker", "127.x.y.4x")) return;
  await withTempDataDir(async (dir) => {
    const { keys, txt } = await exampleOrgKey(dir, "w1");
    await using dns = await startMxDns({ "ok.test": loopback(41), "flaky.test": loopback(43) }, {
      txt,
    });
    const ok = await startCaptureServer({
      host: loopback(41),
      port: 25,
      rcptReply: (a) => (a.startsWith("nobody@") ? "550 5.1.1 No such user" : undefined),
    });
    let flakyRefusals = 1;
    const flaky = await startCaptureServer({
      host: loopback(43),
      port: 25,
      rcptReply: () => flakyRefusals-- > 0 ? "451 4.2.0 Greylisted, come back later" : undefined,
    });
    const store = new SqliteQueueStore(openDatabase(dir));
    const lines: string[] = [];
    const log = createLogger({ level: "info", format: "text", sink: (l) => lines.push(l) });
    const failures: { message: QueuedMessage; failed: readonly FailedRecipient[] }[] = [];
    const outcomes: string[] = [];
    // Each deferral as settle left it: the recipient, and what flaky.test had taken by then.
    const deferrals: {
      id: string | undefined;
      recipient: QueuedRecipient | undefined;
      flakyTook: number;
    }[] = [];
    const watched = watchingSettles(store, async (results) => {
      for (const r of results.filter((r) => r.outcome === "deferred")) {
        const message = (await store.list({ domain: "flaky.test" })).find((m) =>
          m.recipients.some((q) => q.id === r.recipientId)
        );
        const recipient = message?.recipients.find((q) => q.id === r.recipientId);
        deferrals.push({ id: message?.id, recipient, flakyTook: flaky.messages.length });
      }
    });
    const worker = new OutboundWorker({
      store: watched,
      log,
      owner: "test-worker",
      maxSleepMs: 60_000,
      batch: {
        delivery: deliveryOptions(dns),
        retryScheduleMs: [RETRY_MS],
        keysForBatch: () => (d) => keys.keysFor(d),
        onFailed: (message, failed) => {
          failures.push({ message, failed });
          return Promise.resolve();
        },
        events: { delivery: (o) => outcomes.push(o) },
      },
    });
    const events = () => lines.map(parseLogLine).filter((e) => e !== undefined);
    const queuedFor = async (domain: string) =>
      (await store.list({ domain })).flatMap((m) => m.recipients).filter((r) =>
        r.status === "queued" || r.status === "delivering"
      );
    try {
      await t.step(
        "six messages go out over ONE connection, DKIM-signed, and leave the queue",
        async () => {
          const bodies = Array.from(
            { length: 6 },
            (_, i) =>
              `From: Alice <alice@example.org>\r\nTo: u${i}@ok.test\r\nSubject: n${i}\r\n\r\nbody ${i}\r\n`,
          );
          // All six are queued before the worker's first look: started earlier, a loaded
          // machine could let that look (or the one after a due time of "now") find only the
          // first few, and the rest would go over a second connection.
          for (const [i, b] of bodies.entries()) {
            await queueMx(store, [`u${i}@ok.test`], b);
          }
          worker.start();
          worker.wake();
          await ok.waitForMessages(6);
          assertEquals(ok.connections, 1);
          // Messages received in the same millisecond may go out in either order.
          const byRecipient = new Map(ok.messages.map((m) => [m.recipients.join(","), m.body]));
          assertEquals(byRecipient.size, 6);
          for (const [i, b] of bodies.entries()) {
            const text = new TextDecoder().decode(byRecipient.get(`u${i}@ok.test`));
            assert(text.startsWith("DKIM-Signature: v=1; a=ed25519-sha256;"), text);
            assert(text.endsWith(b));
          }
          const verdict = await verifyDkim(ok.messages[0]?.body as Uint8Array, {
            dns: dns.address,
          });
          assert(verdict.ok, verdict.output);
          await until("the queue to empty", async () => (await queuedFor("ok.test")).length === 0);
          await until(
            "six delivered lines",
            () => events().filter((e) => e.event === "delivered").length === 6,
          );
          const line = events().find((e) => e.event === "delivered" && e.to === "u0@ok.test");
          assertEquals(line?.host, `mx.ok.test[${loopback(41)}]`);
          assert(typeof line?.id === "string" && line.id.length > 0);
          assertEquals(line?.domain, "ok.test");
          assert(String(line?.reply).startsWith("250 "), String(line?.reply));
          assert(/^\d+$/.test(String(line?.delay)));
          assertEquals(outcomes.filter((o) => o === "delivered").length, 6);
        },
      );

      await t.step(
        "a 5xx fails that recipient at once and hands it to the report hook",
        async () => {
          const id = await queueMx(
            store,
            ["bob@ok.test", "nobody@ok.test"],
            "From: alice@example.org\r\n\r\nx\r\n",
          );
          worker.wake();
          await until("the failure report", () => failures.length === 1);
          assertEquals(failures[0]?.message.id, id);
          assertEquals(failures[0]?.failed.map((f) => f.reply.slice(0, 9)), ["550 5.1.1"]);
          const left = (await store.get(id))?.recipients ?? [];
          // bob was delivered; nobody is failed (kept for `queue show`, never retried).
          assertEquals(left.filter((r) => r.status !== "failed").length, 0);
          assertEquals(left.map((r) => [r.address, r.status]), [["nobody@ok.test", "failed"]]);
          const line = events().find((e) => e.event === "failed");
          assertEquals([line?.to, line?.level], ["nobody@ok.test", "warn"]);
        },
      );

      await t.step(
        "a 4xx is deferred by the schedule, then delivered when due (no wake-up)",
        async () => {
          const id = await queueMx(
            store,
            ["carol@flaky.test"],
            "From: alice@example.org\r\n\r\ny\r\n",
          );
          const queuedAt = Date.now();
          worker.wake();
          // The deferral as its settle left it (before the retry could start, however late
          // this test gets to look).
          await until("the deferral", () => deferrals.length >= 1, 10_000, 20);
          assertEquals(deferrals.map((d) => d.id), [id]);
          const r = deferrals[0]?.recipient;
          assertEquals(r?.address, "carol@flaky.test");
          assertEquals(r?.attempts, 1);
          assertEquals(r?.status, "queued");
          assert(String(r?.lastReply).startsWith("451 4.2.0"), String(r?.lastReply));
          const next = r?.nextAttemptAt ?? 0;
          // The schedule's one step, ±10%, counted from the deferral (after queuedAt).
          assert(
            next >= queuedAt + RETRY_MS * 0.9,
            `next attempt ${next - queuedAt} ms after queueing`,
          );
          assert(
            next <= Date.now() + RETRY_MS * 1.1,
            `next attempt too late: ${next - Date.now()} ms`,
          );
          assertEquals(deferrals[0]?.flakyTook, 0);
          await flaky.waitForMessages(1, 10_000);
          assert(Date.now() >= next, "delivered before it was due");
          await until(
            "the queue to empty",
            async () => (await queuedFor("flaky.test")).length === 0,
          );
          assertEquals(
            events().filter((e) => e.event === "deferred").map((e) => e.to),
            ["carol@flaky.test"],
          );
          assertEquals(flaky.connections, 2);
        },
      );
    } finally {
      await worker.stop(1_000);
      await store.close();
      await ok.close();
      await flaky.close();
    }
  });
});

await toolTest(
  "OutboundWorker renews its lease while one slow message is in flight (never sent twice)",
  ["dnsmasq"],
  async () => {
    if (!canBindPort25("OutboundWorker lease renewal", "127.x.y.44")) return;
    await withTempDataDir(async (dir) => {
      await using dns = await startMxDns({ "slow.test": loopback(44) });
      // The reply after each final dot takes longer than the whole 3 s lease.
      const slow = await startCaptureServer({
        host: loopback(44),
        port: 25,
        dataReplyDelayMs: 4_500,
        // Without PIPELINING nothing follows the dot before its (late) reply.
        pipelining: false,
      });
      const store = new SqliteQueueStore(openDatabase(dir));
      const worker = new OutboundWorker({
        store,
        log: NULL_LOGGER,
        owner: "test-worker",
        leaseSeconds: 3,
        batch: {
          delivery: deliveryOptions(dns),
        },
      });
      try {
        // Both queued before the worker's first look (started earlier, a loaded machine could
        // let it find only the first: two connections, whatever the lease did).
        await queueMx(store, ["a@slow.test"], "Subject: one\r\n\r\nx\r\n");
        await queueMx(store, ["b@slow.test"], "Subject: two\r\n\r\ny\r\n");
        worker.start();
        worker.wake();
        await until(
          "both delivered",
          async () =>
            (await store.list({ domain: "slow.test" })).flatMap((m) => m.recipients)
              .every((r) => r.status !== "queued" && r.status !== "delivering"),
          20_000,
        );
        // Had the lease run out mid-message, the loop would have claimed the domain again
        // and sent the same mail over a second connection.
        assertEquals(slow.messages.map((m) => m.recipients).sort(), [["a@slow.test"], [
          "b@slow.test",
        ]]);
        assertEquals(slow.connections, 1);
      } finally {
        await worker.stop(1_000);
        await store.close();
        await slow.close();
      }
    });
  },
);
