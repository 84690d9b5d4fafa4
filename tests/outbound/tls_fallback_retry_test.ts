/**
 * When opportunistic TLS that failed goes on in plaintext (`outbound.tls: opportunistic`), as
 * Postfix at `smtp_tls_security_level = may` decides it (PLAINTEXT_FALLBACK_OK_AFTER_STARTTLS_
 * FAILURE and ..._AFTER_TLS_SESSION_FAILURE: only for mail that waited `minimal_backoff_time`):
 * - at a message's first attempt a failed STARTTLS skips the address, so a second MX host that
 *   does TLS takes it encrypted (not the first one in plaintext), and when no host does, the
 *   message waits for its retry, which goes on in plaintext;
 * - a message whose TLS session was lost right after its final dot (the peer may have it) was
 *   deferred at every attempt until it expired, each attempt perhaps one more copy: its next
 *   attempt goes in plaintext from the start.
 * Through runBatch and a real SQLite queue; real peers: dnsmasq and the capture server on
 * 127.x.y.91-94:25 (loopback()).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { QueueStore } from "../../src/queue/types.ts";
import { type CaptureServer, startCaptureServer } from "../_helpers/capture_smtp.ts";
import { loopback, startMxDns, tlsMxTest } from "../_helpers/outbound_world.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { queueMx, runDueBatch } from "./_batch_fixtures.ts";

const FROM = "alice@example.org";

/** The verbs `mx` got since `from` (an index into its `commands`). */
const verbs = (mx: CaptureServer, from: number) =>
  mx.commands.slice(from).map((c) => c.split(" ")[0]?.toUpperCase());

/** Runs one batch of the due destination; the next attempt of what it defers is due at once. */
function batch(store: QueueStore, dns: Parameters<typeof runDueBatch>[1]) {
  return runDueBatch(store, dns, { retryScheduleMs: [1] });
}

/** Until a recipient deferred with a 1 ms step is due (each batch claims at Date.now()). */
const pastRetry = () => new Promise((r) => setTimeout(r, 20));

await tlsMxTest("outbound: plaintext after failed TLS only at a message's retry", {
  label: "tls_fallback_retry_test",
  where: "127.x.y.91",
}, async (t, ca) => {
  const tlsFiles = { cert: ca.certPath, key: ca.keyPath };
  await using dns = await startMxDns({
    "one.test": loopback(93),
    "dot.test": loopback(94),
  }, {
    mx: [
      { name: "two.test", host: "mx1.two.test", preference: 10 },
      { name: "two.test", host: "mx2.two.test", preference: 20 },
    ],
    hosts: [
      { name: "mx1.two.test", addresses: [loopback(91)] },
      { name: "mx2.two.test", addresses: [loopback(92)] },
    ],
  });
  const broken1 = await startCaptureServer({ host: loopback(91), port: 25, startTls: "break" });
  const good2 = await startCaptureServer({
    host: loopback(92),
    port: 25,
    startTls: "late",
    tlsFiles,
  });
  const broken = await startCaptureServer({ host: loopback(93), port: 25, startTls: "break" });
  const dot = await startCaptureServer({
    host: loopback(94),
    port: 25,
    startTls: "late",
    tlsFiles,
    dropUnderTlsAt: ".",
  });
  try {
    await t.step("first attempt: the second MX host takes it under TLS", async () => {
      await withTempDataDir(async (dir) => {
        const store = new SqliteQueueStore(openDatabase(dir));
        try {
          const id = await queueMx(store, "u@two.test", {
            from: FROM,
            body: "Subject: a\r\n\r\na\r\n",
          });
          const { counts } = await batch(store, dns);
          assertEquals(counts.delivered, 1);
          assertEquals(await store.get(id), undefined);
          // The first host: one connection, its STARTTLS broken, no plaintext one after it.
          assertEquals([broken1.connections, broken1.messages.length], [1, 0]);
          assertEquals(good2.messages.length, 1);
          assert(verbs(good2, 0).includes("STARTTLS"), verbs(good2, 0).join(" "));
        } finally {
          await store.close();
        }
      });
    });
    await t.step(
      "first attempt deferred when no host does TLS, the retry in plaintext",
      async () => {
        await withTempDataDir(async (dir) => {
          const store = new SqliteQueueStore(openDatabase(dir));
          try {
            const id = await queueMx(store, "u@one.test", {
              from: FROM,
              body: "Subject: b\r\n\r\nb\r\n",
            });
            const first = await batch(store, dns);
            assertEquals(first.counts.deferred, 1);
            assertEquals([broken.connections, broken.messages.length], [1, 0]);
            await pastRetry();
            const second = await batch(store, dns);
            assertEquals(second.counts.delivered, 1);
            assertEquals(await store.get(id), undefined);
            assertEquals([broken.connections, broken.messages.length], [3, 1]);
            const fallback = second.events.filter((e) => e.event === "outbound_tls_fallback");
            assertEquals(fallback.length, 1, JSON.stringify(second.events));
          } finally {
            await store.close();
          }
        });
      },
    );
    await t.step("TLS lost after the final dot: the next attempt in plaintext", async () => {
      await withTempDataDir(async (dir) => {
        const store = new SqliteQueueStore(openDatabase(dir));
        try {
          const id = await queueMx(store, "u@dot.test", {
            from: FROM,
            body: "Subject: c\r\n\r\nc\r\n",
          });
          const first = await batch(store, dns);
          assertEquals(first.counts.deferred, 1);
          assertEquals(dot.messages.length, 1, "the peer got it once, without a reply");
          const commands = dot.commands.length;
          await pastRetry();
          const second = await batch(store, dns);
          assertEquals(second.counts.delivered, 1, JSON.stringify(second.events));
          assertEquals(await store.get(id), undefined);
          assertEquals(dot.connections, 2);
          assert(!verbs(dot, commands).includes("STARTTLS"), verbs(dot, commands).join(" "));
          assertEquals(dot.messages.length, 2);
        } finally {
          await store.close();
        }
      });
    });
  } finally {
    for (const mx of [broken1, good2, broken, dot]) await mx.close();
  }
});
