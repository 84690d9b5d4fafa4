import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { NewRecipient } from "../../src/queue/types.ts";
import { bounceFailed } from "../../src/odmr/_drain_bounce.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

Deno.test("bounceFailed() queues a failure DSN by the rules of expiry (#10)", async (t) => {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir));
    const opts = {
      store,
      hostname: "mx.test",
      isLocalDomain: (d: string) => d === "local.test" || d === "customer.test",
      log: NULL_LOGGER,
    };
    /** Queues a message and returns it as the drain sees it. */
    async function queued(from: string, recipients: NewRecipient[]) {
      const w = await store.begin({ mailFrom: from, params: {}, recipients });
      await w.write(enc.encode("Subject: hi\r\nFrom: <s@local.test>\r\n\r\nbody\r\n"));
      await w.commit();
      const m = await store.get(w.id);
      assert(m !== undefined);
      return m;
    }
    const rcpt = (address: string, notify?: string): NewRecipient => ({
      address,
      domain: "customer.test",
      ...(notify === undefined ? {} : { notify }),
    });
    const failedAll = (m: { recipients: readonly { id: number }[] }) =>
      m.recipients.map((r) => ({ id: r.id, reply: "554 5.6.0 Message contains a bare CR or LF" }));

    await t.step("a local sender gets one report for the failed recipients", async () => {
      const m = await queued("s@local.test", [rcpt("a@customer.test"), rcpt("b@customer.test")]);
      assertEquals(await bounceFailed(m, failedAll(m), opts), "queued");
      const reports = (await store.list()).filter((x) => x.mailFrom === "");
      assertEquals(reports.length, 1);
      assertEquals(reports[0]?.recipients.map((r) => r.address), ["s@local.test"]);
      let text = "";
      for await (const c of store.readBody(reports[0]!.id)) text += dec.decode(c);
      assert(text.includes("Final-Recipient: rfc822; a@customer.test"), text);
      assert(text.includes("Final-Recipient: rfc822; b@customer.test"), text);
      assert(text.includes("Status: 5.6.0\r\n"), text);
      assert(text.includes("it was refused"), text);
      assert(text.includes("Subject: hi\r\n"), "the original's headers are returned");
    });
    await t.step("never for <> (no bounce of a bounce)", async () => {
      const m = await queued("", [rcpt("a@customer.test")]);
      assertEquals(await bounceFailed(m, failedAll(m), opts), "none");
    });
    await t.step("not for NOTIFY=NEVER or a list without FAILURE", async () => {
      const m = await queued("s@local.test", [
        rcpt("a@customer.test", "NEVER"),
        rcpt("b@customer.test", "SUCCESS,DELAY"),
      ]);
      assertEquals(await bounceFailed(m, failedAll(m), opts), "none");
    });
    await t.step("dropped for a sender outside our domains", async () => {
      const m = await queued("s@remote.test", [rcpt("a@customer.test")]);
      assertEquals(await bounceFailed(m, failedAll(m), opts), "dropped");
    });
    await store.close();
  });
});
