/**
 * The maintenance half of the outbound contract, run by tests/queue/contract_test.ts against
 * both backends: mx-route expiry at outbound.max_age with a failure DSN, one delay DSN per
 * message (never twice, across a restart), NOTIFY honoured, reports to foreign senders on
 * route mx within the budget (expired inbound mail included), never a report for `<>`. Every
 * report is parsed with the strict RFC 5322 header parser, each MIME part and DSN group too.
 */
import assert from "node:assert/strict";
import type {
  MaintenanceOptions,
  QueuedMessage,
  QueueStore,
  Route,
} from "../../src/queue/types.ts";
import { bounceFailed, BounceLimiter } from "../../src/queue/bounce.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { maintenanceOptions } from "../_helpers/queue_fixtures.ts";
import { mustParseHeaders } from "../_helpers/rfc5322_headers.ts";
import { type OutboundOpener, putRouted, T0 } from "./_outbound_contract.ts";

const HOUR = 3_600_000;
const DAY = 24 * HOUR;

const OPTIONS: MaintenanceOptions = maintenanceOptions({
  isLocalDomain: (d) => d === "local.test",
  foreignBounceBudget: 10,
});

/** A DSN parsed strictly: top fields, per-message fields, per-recipient groups. */
export interface ParsedDsn {
  readonly top: Map<string, string>;
  readonly perMessage: Map<string, string>;
  readonly perRecipient: Map<string, string>[];
}

const dec = new TextDecoder();
const enc = new TextEncoder();

function toMap(fields: readonly { name: string; value: string }[]): Map<string, string> {
  return new Map(fields.map((f) => [f.name.toLowerCase(), f.value.trim()]));
}

/** Parses a stored report with the strict header parser: any bad line fails the test. */
export function parseDsn(bytes: Uint8Array): ParsedDsn {
  const top = mustParseHeaders(bytes);
  assert.ok(top.hasBody);
  const topFields = toMap(top.fields);
  const boundary = /boundary="([^"]+)"/.exec(topFields.get("content-type") ?? "")?.[1];
  assert.ok(boundary, "a multipart/report boundary");
  const text = "\r\n" + dec.decode(bytes.subarray(top.bodyOffset));
  const pieces = text.split(`\r\n--${boundary}`).slice(1);
  assert.ok(pieces.at(-1)?.startsWith("--"), "the close-delimiter ends the report");
  const parts = pieces.slice(0, -1).map((p) => enc.encode(p.slice(2) + "\r\n"));
  assert.ok(parts.length >= 2);
  for (const part of parts) assert.ok(mustParseHeaders(part).hasBody);
  const status = parts[1] ?? new Uint8Array();
  const head = mustParseHeaders(status);
  assert.equal(toMap(head.fields).get("content-type"), "message/delivery-status");
  let rest = status.subarray(head.bodyOffset);
  const groups: Map<string, string>[] = [];
  while (rest.length > 2) {
    const g = mustParseHeaders(rest);
    groups.push(toMap(g.fields));
    rest = rest.subarray(g.bodyOffset);
  }
  const [perMessage, ...perRecipient] = groups;
  assert.ok(perMessage);
  return { top: topFields, perMessage, perRecipient };
}

/** Reports queued so far (MAIL FROM:<>), each with its recipient's route and its DSN. */
async function reports(
  store: QueueStore,
  originals: readonly string[] = [],
): Promise<{ message: QueuedMessage; to: string; route: Route; dsn: ParsedDsn }[]> {
  const out = [];
  for (const message of await store.list()) {
    if (message.mailFrom !== "" || originals.includes(message.id)) continue;
    const r = message.recipients[0];
    assert.ok(r);
    assert.equal(r.notify, "NEVER", "no report about a report");
    out.push({
      message,
      to: r.address,
      route: r.route,
      dsn: parseDsn(await collectBytes(store.readBody(message.id))),
    });
  }
  return out;
}

/** The only report queued so far; it goes back to the sender s@local.test over ATRN. */
async function onlyReportToSender(store: QueueStore): Promise<ParsedDsn> {
  const [report, ...more] = await reports(store);
  assert.equal(more.length, 0);
  assert.ok(report);
  assert.equal(report.to, "s@local.test");
  assert.equal(report.route, "atrn");
  return report.dsn;
}

/** Final-Recipient, Action and Status of each per-recipient group. */
function recipientFields(dsn: ParsedDsn): (string | undefined)[][] {
  return dsn.perRecipient.map((g) => [g.get("final-recipient"), g.get("action"), g.get("status")]);
}

/** The maintenance cases. */
export async function outboundMaintenanceContract(
  t: Deno.TestContext,
  open: OutboundOpener,
): Promise<void> {
  await t.step(
    "an mx recipient refused for good expires at outbound.max_age, no second report, then is removed",
    async () => {
      await open(async (store, clock) => {
        const id = await putRouted(store, clock, [["a@far.test", "mx"]]);
        const lease = await store.claimOutbound({ owner: "w", leaseSeconds: 60, now: clock.ms });
        assert.ok(lease);
        const [message] = await Array.fromAsync(lease.messages());
        assert.ok(message);
        const rid = message.recipients[0]?.id ?? -1;
        // The worker reported it when it failed (bounce.ts); expiry must not report it again.
        await lease.settle([
          { recipientId: rid, messageId: id, outcome: "failed", reply: "550 5.1.1 unknown" },
        ]);
        const failed = [{ id: rid, reply: "550 5.1.1 unknown" }];
        const local = { isLocalDomain: OPTIONS.isLocalDomain, hostname: "mx.test" };
        const limiter = new BounceLimiter(1);
        const queued = await bounceFailed(message, failed, {
          store,
          ...local,
          limiter,
          log: NULL_LOGGER,
        });
        assert.equal(queued, "queued");
        await lease.release();
        const [report] = await reports(store, [id]);
        assert.ok(report);
        clock.ms = T0 + 1000 + 5 * DAY;
        assert.equal((await store.maintain(OPTIONS)).expiredRecipients, 0, "exactly max_age");
        clock.ms += 1;
        const pass = await store.maintain(OPTIONS);
        assert.equal(pass.expiredRecipients, 1);
        assert.equal(pass.dsnQueued + pass.dsnDropped + pass.delayNotices, 0);
        assert.deepEqual((await store.get(id))?.recipients.map((r) => r.status), ["expired"]);
        clock.ms += DAY + 1;
        assert.equal((await store.maintain(OPTIONS)).removedRecipients, 1);
        assert.equal(await store.get(id), undefined);
        assert.deepEqual((await store.list()).map((m) => m.id), [report.message.id]);
      });
    },
  );

  await t.step("an mx recipient expires after outbound.max_age with one failure DSN", async () => {
    await open(async (store, clock) => {
      const id = await putRouted(store, clock, [["a@far.test", "mx"], ["b@local.test", "atrn"]], {
        notify: "FAILURE",
      });
      clock.ms += 5 * DAY;
      const atN = await store.maintain(OPTIONS);
      assert.equal(atN.expiredRecipients, 0, "exactly max_age");
      assert.equal(atN.delayNotices, 0, "NOTIFY=FAILURE: no delay notice");
      clock.ms += 1;
      const report = await store.maintain(OPTIONS);
      assert.equal(report.expiredRecipients, 1);
      assert.equal(report.dsnQueued, 1);
      assert.equal(report.foreignDsnQueued, 0);
      const after = await store.get(id);
      assert.deepEqual(after?.recipients.map((r) => [r.address, r.status]), [
        ["a@far.test", "expired"],
        ["b@local.test", "queued"],
      ]);
      const dsn = await onlyReportToSender(store);
      assert.equal(dsn.top.get("subject"), "Undelivered Mail Returned to Sender");
      assert.deepEqual(recipientFields(dsn), [["rfc822; a@far.test", "failed", "5.4.7"]]);
      assert.equal(
        await store.claimOutbound({ owner: "w", leaseSeconds: 60, now: clock.ms }),
        undefined,
      );
    });
  });

  await t.step(
    "one delay DSN per message after delay_notice, never twice, across a restart",
    async () => {
      await open(async (store, clock, reopen) => {
        const mx = await putRouted(store, clock, [["a@far.test", "mx"], ["b@far.test", "mx"]]);
        await putRouted(store, clock, [["c@local.test", "atrn"]]); // ATRN mail: no delay notice
        const lease = await store.claimOutbound({ owner: "w", leaseSeconds: 60, now: clock.ms });
        assert.ok(lease);
        const rid = (await Array.fromAsync(lease.messages()))[0]?.recipients[0]?.id ?? -1;
        await lease.settle([{
          recipientId: rid,
          messageId: mx,
          outcome: "deferred",
          reply: "452 4.2.2 mailbox full",
          retryAt: clock.ms + 10 * DAY,
        }]);
        await lease.release();
        clock.ms = T0 + 1000 + 4 * HOUR;
        assert.equal((await store.maintain(OPTIONS)).delayNotices, 0, "exactly delay_notice");
        clock.ms += 1;
        assert.equal((await store.maintain(OPTIONS)).delayNotices, 1);
        assert.equal((await store.maintain(OPTIONS)).delayNotices, 0, "not twice");
        const restarted = await reopen();
        clock.ms += HOUR;
        assert.equal((await restarted.maintain(OPTIONS)).delayNotices, 0, "not after a restart");
        const delay = await onlyReportToSender(restarted);
        assert.equal(delay.top.get("subject"), "Delayed Mail (still being retried)");
        assert.deepEqual(recipientFields(delay), [
          ["rfc822; a@far.test", "delayed", "4.2.2"],
          ["rfc822; b@far.test", "delayed", "4.4.7"],
        ]);
        assert.ok(delay.perRecipient.every((g) => g.get("will-retry-until") !== undefined));
        const original = await restarted.get(mx);
        assert.deepEqual(original?.recipients.map((r) => r.status), ["queued", "queued"]);
        // Later the failure report still comes, once.
        clock.ms = T0 + 1000 + 5 * DAY + 1;
        const end = await restarted.maintain(OPTIONS);
        assert.equal(end.expiredRecipients, 2);
        assert.equal(end.dsnQueued, 1);
        assert.equal(end.delayNotices, 0);
      });
    },
  );

  await t.step(
    "NOTIFY: DELAY or absent gets a delay notice; NEVER, FAILURE or <> none",
    async () => {
      await open(async (store, clock) => {
        await putRouted(store, clock, [["a@far.test", "mx"]], { notify: "DELAY" });
        await putRouted(store, clock, [["b@far.test", "mx"]], { notify: "NEVER" });
        await putRouted(store, clock, [["c@far.test", "mx"]], { notify: "SUCCESS,FAILURE" });
        const bounce = await putRouted(store, clock, [["d@far.test", "mx"]], { from: "" });
        await putRouted(store, clock, [["e@far.test", "mx"]]);
        clock.ms += 4 * HOUR + 1;
        const pass = await store.maintain(OPTIONS);
        assert.equal(pass.delayNotices, 2);
        const got = await reports(store, [bounce]);
        assert.deepEqual(
          got.map((r) => r.dsn.perRecipient.map((g) => g.get("final-recipient"))).sort(),
          [["rfc822; a@far.test"], ["rfc822; e@far.test"]],
        );
        // The others are settled too: no report later, and none for <> at expiry either.
        clock.ms += 5 * DAY;
        const end = await store.maintain(OPTIONS);
        assert.equal(end.expiredRecipients, 5);
        assert.equal(end.delayNotices, 0);
        assert.equal(end.dsnQueued, 2, "FAILURE and absent: yes; DELAY-only, NEVER and <>: no");
      });
    },
  );

  await t.step(
    "foreign senders get reports on route mx within the budget, then dropped",
    async () => {
      await open(async (store, clock) => {
        // Expired INBOUND mail (route atrn, max_age 30 d) from a foreign sender.
        await putRouted(store, clock, [["u@local.test", "atrn"]], { from: "x@foreign.test" });
        await putRouted(store, clock, [["v@local.test", "atrn"]], { from: "y@foreign.test" });
        await putRouted(store, clock, [["w@local.test", "atrn"]], { from: "z@foreign.test" });
        clock.ms += 30 * DAY + 1;
        const pass = await store.maintain({ ...OPTIONS, foreignBounceBudget: 2 });
        assert.equal(pass.expiredRecipients, 3);
        assert.equal(pass.dsnQueued, 2, "the budget: N");
        assert.equal(pass.foreignDsnQueued, 2);
        assert.equal(pass.dsnDropped, 1, "N+1 is dropped");
        const got = await reports(store);
        assert.deepEqual(got.map((r) => r.route), ["mx", "mx"]);
        assert.deepEqual(got.map((r) => r.dsn.perRecipient[0]?.get("status")), ["5.4.7", "5.4.7"]);
        // Due at once for the outbound worker.
        const lease = await store.claimOutbound({ owner: "w", leaseSeconds: 60, now: clock.ms });
        assert.ok(lease);
        assert.equal(lease.domains[0], "foreign.test");
        const none = await store.maintain({ ...OPTIONS, foreignBounceBudget: 0 });
        assert.equal(none.dsnQueued + none.dsnDropped, 0, "each message is decided once");
      });
    },
  );
}
