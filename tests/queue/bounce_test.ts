import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { NewRecipient } from "../../src/queue/types.ts";
import { bounceFailed, BounceLimiter, bounceRoute } from "../../src/queue/bounce.ts";
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
      limiter: new BounceLimiter(1),
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
      assertEquals(reports[0]?.recipients.map((r) => [r.address, r.route]), [
        ["s@local.test", "atrn"],
      ]);
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
    await t.step(
      "a foreign sender's report goes on route mx within the limit, then dropped",
      async () => {
        const m = await queued("s@remote.test", [rcpt("a@customer.test")]);
        assertEquals(await bounceFailed(m, failedAll(m), opts), "queued");
        const reports = (await store.list()).filter((x) =>
          x.mailFrom === "" && x.recipients[0]?.address === "s@remote.test"
        );
        assertEquals(reports.map((x) => x.recipients.map((r) => [r.route, r.status])), [
          [["mx", "queued"]],
        ]);
        assert(reports[0]?.recipients[0]?.nextAttemptAt !== undefined, "due at once");
        const again = await queued("t@remote.test", [rcpt("b@customer.test")]);
        assertEquals(await bounceFailed(again, failedAll(again), opts), "dropped");
        // A local sender is not limited by the foreign budget.
        const local = await queued("s@local.test", [rcpt("c@customer.test")]);
        assertEquals(await bounceFailed(local, failedAll(local), opts), "queued");
      },
    );
    await store.close();
  });
});

Deno.test("BounceLimiter allows N foreign bounces an hour and refuses N+1; the window slides", () => {
  let now = 1_000_000;
  const limiter = new BounceLimiter(3, () => now);
  assertEquals(limiter.available(), 3);
  assert(limiter.tryTake());
  now += 1000;
  limiter.spend(2);
  assertEquals(limiter.available(), 0);
  assertEquals(limiter.tryTake(), false, "N+1 in the same hour");
  now += 3_600_000 - 1000; // exactly one hour after the first
  assertEquals(limiter.available(), 1, "the first has left the window");
  assert(limiter.tryTake());
  assertEquals(limiter.tryTake(), false);
  now += 1000;
  assertEquals(limiter.available(), 2);
  assertEquals(new BounceLimiter().available(), 100, "default 100 per hour");
});

Deno.test("bounceRoute: <> none, local atrn, foreign mx only when allowed (asked only then)", () => {
  let asked = 0;
  const allow = (ok: boolean) => () => {
    asked++;
    return ok;
  };
  const local = (d: string) => d === "local.test";
  assertEquals(bounceRoute("", local, allow(true)), { kind: "none" });
  assertEquals(bounceRoute("a@LOCAL.test", local, allow(true)), {
    kind: "send",
    route: "atrn",
    to: "a@LOCAL.test",
    domain: "local.test",
  });
  assertEquals(asked, 0);
  assertEquals(bounceRoute("a@far.test", local, allow(true)), {
    kind: "send",
    route: "mx",
    to: "a@far.test",
    domain: "far.test",
  });
  assertEquals(bounceRoute("a@far.test", local, allow(false)), {
    kind: "dropped",
    reason: "rate_limited",
  });
  assertEquals(asked, 2);
});
