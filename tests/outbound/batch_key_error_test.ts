/**
 * A DKIM key that cannot be read (a key file that does not parse, a key store that does not
 * answer) defers only the messages it would sign, by the retry schedule, and the destination's
 * other mail goes out past them. The signer asked for the keys after reading the body, outside
 * the guard of review rev14 F2: its throw failed the whole batch, and every message queued
 * after it for that domain stayed behind it, claimed again and again until it expired.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { DkimKeyStore } from "../../src/dkim/keys.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { QueueStore } from "../../src/queue/types.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { loopback, startMxDns } from "../_helpers/outbound_world.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";
import { assertDeferredOnce, queueMx, runDueBatch } from "./_batch_fixtures.ts";

/** A message from `from` to `to` by MX (signed by `from`'s domain's keys, if any). */
function queueFrom(store: QueueStore, from: string, to: string): Promise<string> {
  return queueMx(store, to, { from, body: `From: ${from}\r\nSubject: s\r\n\r\nbody\r\n` });
}

await toolTest(
  "outbound: a DKIM key that cannot be read defers the messages it signs; the rest goes past them",
  ["dnsmasq"],
  async () => {
    if (!canBindPort25("batch_key_error_test", "127.x.y.63")) return;
    await using dns = await startMxDns({ "ok.test": loopback(63) });
    const mx = await startCaptureServer({ host: loopback(63), port: 25 });
    try {
      await withTempDataDir(async (dir) => {
        const keys = new DkimKeyStore(dir);
        await keys.generate("good.example", "s1", "ed25519");
        // A key file put there by hand that does not parse (a copy cut short).
        await Deno.mkdir(`${dir}/dkim/bad.example`, { recursive: true, mode: 0o700 });
        await Deno.writeTextFile(
          `${dir}/dkim/bad.example/s1.pem`,
          "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n",
          { mode: 0o600 },
        );
        const store = new SqliteQueueStore(openDatabase(dir));
        try {
          const bad = await queueFrom(store, "a@bad.example", "u1@ok.test");
          const good = await queueFrom(store, "a@good.example", "u2@ok.test");
          const { counts, events, startedAt } = await runDueBatch(store, dns, {
            keysForBatch: () => (domain) => keys.keysFor(domain),
          });
          // The good one went out past it, signed...
          assertEquals(mx.messages.map((m) => m.recipients), [["u2@ok.test"]]);
          const sent = new TextDecoder().decode(mx.messages[0]?.body);
          assert(sent.startsWith("DKIM-Signature:") && sent.includes("d=good.example"), sent);
          assertEquals([counts.delivered, counts.deferred], [1, 1]);
          assertEquals(await store.get(good), undefined);
          // ...and the other waits for its next step, never sent unsigned.
          await assertDeferredOnce(store, bad, startedAt);
          // Said, naming the domain whose keys could not be read.
          const said = events.filter((e) => e.event === "message_unreadable");
          assertEquals(said.length, 1);
          assert(
            String(said[0]?.fields.error).includes("bad.example"),
            String(said[0]?.fields.error),
          );
        } finally {
          await store.close();
        }
      });
    } finally {
      await mx.close();
    }
  },
);
