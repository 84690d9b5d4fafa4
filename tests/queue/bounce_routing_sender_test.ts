/**
 * The MX and the submission port refuse recipients whose local part names another host (`%`,
 * `!`, quoted `@`: `550 5.7.1`), so that no customer MTA downstream (Postfix rewrites
 * `user%far@local` to `user@far` and trusts 127.0.0.1, where fetchmail hands mail over) is
 * made to relay with them (docs/protocol.md §6.3, docs/QUIRKS.md). A failure report goes to
 * the reverse-path, which nobody checked that way: MAIL FROM:<victim%far.test@local.test> to
 * an unknown user of local.test, refused by the customer, queued a report to
 * `victim%far.test@local.test` on route atrn, without the foreign-bounce limit, carrying
 * the sender's headers (or, RET=FULL, 64 KiB of the message) to the customer's MTA, which
 * relays it to victim@far.test.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { bounceFailed, BounceLimiter } from "../../src/queue/bounce.ts";
import { decideRecipient } from "../../src/smtp/sinks/queue_sink.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";

const enc = new TextEncoder();
const SENDERS = [
  "victim%far.test@local.test",
  "far.test!victim@local.test",
  '"victim@far.test"@local.test',
];

Deno.test("no failure report goes to a reverse-path that the MX would refuse as a recipient", async (t) => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir));
    const isLocalDomain = (d: string) => d === "local.test";
    const opts = {
      store,
      hostname: "mx.test",
      isLocalDomain,
      log: NULL_LOGGER,
      limiter: new BounceLimiter(0), // no foreign reports at all
    };
    try {
      for (const from of SENDERS) {
        await t.step(from, async () => {
          // The MX refuses this address as a recipient.
          const asRcpt = decideRecipient({ address: from, domain: "local.test" }, {
            isLocalDomain,
          });
          assertEquals(asRcpt, { ok: false, reason: "routing" });
          const w = await store.begin({
            mailFrom: from,
            params: { ret: "FULL" },
            recipients: [{ address: "nobody@local.test", domain: "local.test" }],
          });
          await w.write(enc.encode("Subject: spam\r\n\r\nbuy now\r\n"));
          await w.commit();
          const m = await store.get(w.id);
          assert(m !== undefined);
          const failed = m.recipients.map((r) => ({ id: r.id, reply: "550 5.1.1 No such user" }));
          await bounceFailed(m, failed, opts);
          const reports = (await store.list()).filter((x) => x.mailFrom === "");
          const to = reports.flatMap((x) => x.recipients.map((r) => `${r.route}:${r.address}`));
          assertEquals(to.filter((a) => a.endsWith(from)), [], "a report was queued to it");
        });
      }
    } finally {
      await store.close();
    }
  });
});
