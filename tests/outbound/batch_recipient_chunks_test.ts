/**
 * A message with more than 100 recipients at one domain (`submission.max_recipients` raised):
 * RFC 5321 §4.5.3.1.10 lets a server take no more than 100 RCPTs per transaction (it answers
 * the rest 452), and says a client "SHOULD be prepared to transmit in 100-recipient chunks".
 * Every recipient past the 100th was deferred instead, and each retry (1m, 5m, … 4h) delivered
 * 100 more: a list of some thousand recipients at one domain took days, and its tail expired
 * (a failure report) before it went out. Now the batch sends such a message in transactions of
 * at most 100 recipients, all on one connection. Through runBatch and a real SQLite queue; the
 * MX is the capture server on 127.x.y.95:25 (loopback()) answering 452 past 100 RCPTs, as
 * Postfix's smtpd_recipient_limit does, found through dnsmasq.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { loopback, startMxDns } from "../_helpers/outbound_world.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";
import { runDueBatch } from "./_batch_fixtures.ts";

const RECIPIENTS = 250;
/** What the MX takes per transaction, the least RFC 5321 §4.5.3.1.10 allows. */
const LIMIT = 100;

await toolTest(
  "outbound: a message with more than 100 recipients at one domain goes in 100-recipient transactions",
  ["dnsmasq"],
  async () => {
    if (!canBindPort25("batch_recipient_chunks_test", "127.x.y.95")) return;
    await using dns = await startMxDns({ "list.test": loopback(95) });
    let taken = 0;
    const mx = await startCaptureServer({
      host: loopback(95),
      port: 25,
      mailReply: () => {
        taken = 0;
        return undefined;
      },
      rcptReply: () => ++taken > LIMIT ? "452 4.5.3 Too many recipients" : undefined,
    });
    try {
      await withTempDataDir(async (dir) => {
        const store = new SqliteQueueStore(openDatabase(dir));
        try {
          const to = Array.from({ length: RECIPIENTS }, (_, i) => `u${i}@list.test`);
          const writer = await store.begin({
            mailFrom: "alice@example.org",
            params: {},
            recipients: to.map((address) => ({ address, domain: "list.test", route: "mx" })),
          });
          await writer.write(new TextEncoder().encode("Subject: list\r\n\r\nhello\r\n"));
          await writer.commit();
          const { counts } = await runDueBatch(store, dns);
          assertEquals([counts.delivered, counts.deferred, counts.failed], [RECIPIENTS, 0, 0]);
          assertEquals(await store.get(writer.id), undefined, "nothing left queued");
          // Each recipient once, in transactions of at most 100, over one connection.
          assertEquals(mx.messages.flatMap((m) => m.recipients).sort(), to.sort());
          assertEquals(mx.messages.map((m) => m.recipients.length), [100, 100, 50]);
          assertEquals(mx.connections, 1);
        } finally {
          await store.close();
        }
      });
    } finally {
      await mx.close();
    }
  },
);
