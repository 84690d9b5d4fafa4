import assert from "node:assert/strict";
import { queueCommand } from "../../src/cli/queue.ts";
import { AGE_BUCKETS } from "../../src/queue/admin.ts";
import { onBothBackends, type TargetOpener } from "./_backends.ts";
import { expireAt, seedQueue } from "./_queue_seed.ts";
import { recordingIo, type Where } from "./_io.ts";

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
const MIN = 60_000;
const DAY = 86_400_000;

interface ListedMessage {
  id: string;
  recipients: { address: string; domain: string; status: string }[];
}

async function listJson(target: Where, extra: string[] = [], now = T0) {
  const io = recordingIo(target);
  const code = await queueCommand(["list", "--json", ...extra], io, { now: () => now });
  assert.equal(code, 0, io.err);
  return JSON.parse(io.out) as ListedMessage[];
}

function statuses(list: ListedMessage[]): string[] {
  return list.flatMap((m) => m.recipients.map((r) => `${r.address}:${r.status}`));
}

/** `queue requeue|list|summary` cases: the same assertions on SQLite and PostgreSQL (#14). */
async function cases(t: Deno.TestContext, open: TargetOpener): Promise<void> {
  await t.step(
    "queue requeue ID makes that message's failed recipients queued again (#11)",
    async () => {
      await open(async (target) => {
        const [m1, m2] = await seedQueue(target, [
          { to: ["a@one.test", "b@one.test"], at: T0, failed: ["a@one.test"] },
          { to: ["c@one.test"], at: T0 + 1, failed: ["c@one.test"] },
        ]);
        assert.ok(m1 && m2);
        assert.deepEqual(statuses(await listJson(target)), [
          "a@one.test:failed",
          "b@one.test:queued",
          "c@one.test:failed",
        ]);
        const io = recordingIo(target);
        assert.equal(await queueCommand(["requeue", m1], io), 0, io.err);
        assert.equal(io.out, "Requeued 1 failed recipient (1 message)\n");
        assert.deepEqual(statuses(await listJson(target)), [
          "a@one.test:queued",
          "b@one.test:queued",
          "c@one.test:failed",
        ]);
        const again = recordingIo(target);
        assert.equal(await queueCommand(["requeue", m1], again), 0);
        assert.equal(again.out, "Requeued 0 failed recipients (0 messages)\n");
      });
    },
  );

  await t.step(
    "queue requeue with an unknown ID requeues the others and exits 1 naming it",
    async () => {
      await open(async (target) => {
        const [m1] = await seedQueue(target, [{
          to: ["a@one.test"],
          at: T0,
          failed: ["a@one.test"],
        }]);
        assert.ok(m1);
        const io = recordingIo(target);
        assert.equal(await queueCommand(["requeue", m1, "0000000000NOSUCH", "bad/id"], io), 1);
        assert.equal(
          io.err,
          'error: Message "bad/id" not found\nerror: Message "0000000000NOSUCH" not found\n',
        );
        assert.deepEqual(statuses(await listJson(target)), ["a@one.test:queued"]);
      });
    },
  );

  await t.step("queue requeue --domain touches only that domain's failed recipients", async () => {
    await open(async (target) => {
      await seedQueue(target, [
        { to: ["a@one.test", "b@two.test"], at: T0, failed: ["a@one.test", "b@two.test"] },
        { to: ["c@two.test"], at: T0 + 1, failed: ["c@two.test"] },
      ]);
      const io = recordingIo(target);
      assert.equal(await queueCommand(["requeue", "--domain", "TWO.test."], io), 0, io.err);
      assert.equal(io.out, 'Requeued 2 failed recipients in "two.test" (2 messages)\n');
      assert.deepEqual(statuses(await listJson(target)), [
        "a@one.test:failed",
        "b@two.test:queued",
        "c@two.test:queued",
      ]);
    });
  });

  await t.step(
    "queue requeue --failed requeues every failed recipient but leaves expired ones",
    async () => {
      await open(async (target) => {
        await seedQueue(target, [
          { to: ["old@one.test"], at: T0 - 40 * DAY },
          { to: ["a@one.test"], at: T0, failed: ["a@one.test"] },
          { to: ["b@two.test"], at: T0 + 1, failed: ["b@two.test"] },
        ]);
        await expireAt(target, T0 + 2, 30 * DAY);
        const io = recordingIo(target);
        assert.equal(await queueCommand(["requeue", "--failed"], io), 0, io.err);
        assert.equal(
          io.out,
          "Requeued 2 failed recipients (2 messages)\n" +
            "Not requeued: 1 expired recipient (older than max_age: would expire again at once)\n",
        );
        assert.deepEqual(statuses(await listJson(target)), [
          "old@one.test:expired",
          "a@one.test:queued",
          "b@two.test:queued",
        ]);
      });
    },
  );

  await t.step("queue requeue usage errors exit 2 and change nothing", async (t) => {
    for (
      const { argv, want } of [
        { argv: ["requeue"], want: "--failed" },
        { argv: ["requeue", "X", "--failed"], want: "not several" },
        { argv: ["requeue", "--domain", "one.test", "--failed"], want: "not several" },
        { argv: ["requeue", "--domain"], want: "--domain" },
        { argv: ["requeue", "--all"], want: "--all" },
      ]
    ) {
      await t.step(argv.join(" "), async () => {
        await open(async (target) => {
          await seedQueue(target, [{ to: ["a@one.test"], at: T0, failed: ["a@one.test"] }]);
          const io = recordingIo(target);
          assert.equal(await queueCommand(argv, io), 2);
          assert.ok(io.err.includes(want), io.err);
          assert.deepEqual(statuses(await listJson(target)), ["a@one.test:failed"]);
        });
      });
    }
  });

  await t.step(
    "queue list --status keeps matching recipients and drops messages without any",
    async () => {
      await open(async (target) => {
        const [m1, m2] = await seedQueue(target, [
          { to: ["a@one.test", "b@one.test"], at: T0, failed: ["a@one.test"] },
          { to: ["c@two.test"], at: T0 + 1 },
        ]);
        const failed = await listJson(target, ["--status", "failed"]);
        assert.deepEqual(failed.map((m) => m.id), [m1]);
        assert.deepEqual(statuses(failed), ["a@one.test:failed"]);
        const queued = await listJson(target, ["--status", "queued"]);
        assert.deepEqual(queued.map((m) => m.id), [m1, m2]);
        assert.deepEqual(statuses(queued), ["b@one.test:queued", "c@two.test:queued"]);
        const both = await listJson(target, ["--status", "failed", "--status", "queued"]);
        assert.equal(statuses(both).length, 3);
        const withDomain = await listJson(target, ["--status", "queued", "--domain", "two.test"]);
        assert.deepEqual(statuses(withDomain), ["c@two.test:queued"]);
        assert.deepEqual(await listJson(target, ["--status", "delivering"]), []);
        const text = recordingIo(target);
        assert.equal(await queueCommand(["list", "--status", "expired"], text), 0);
        assert.equal(text.out, "No mail matches\n");
      });
    },
  );

  await t.step(
    "queue list --older-than keeps messages at least that old (N and N-1 ms)",
    async () => {
      await open(async (target) => {
        const [exact, younger] = await seedQueue(target, [
          { to: ["a@one.test"], at: T0 - 2 * 3_600_000 },
          { to: ["b@one.test"], at: T0 - 2 * 3_600_000 + 1 },
        ]);
        assert.deepEqual((await listJson(target, ["--older-than", "2h"])).map((m) => m.id), [
          exact,
        ]);
        assert.deepEqual(
          (await listJson(target, ["--older-than", "2h"], T0 + 1)).map((m) => m.id),
          [exact, younger],
        );
        assert.deepEqual(await listJson(target, ["--older-than", "1d"]), []);
      });
    },
  );

  await t.step("queue list filter values that make no sense exit 2 naming the flag", async (t) => {
    for (
      const { argv, want } of [
        { argv: ["list", "--status", "sent"], want: '--status: "sent"' },
        { argv: ["list", "--older-than", "2"], want: '--older-than: "2"' },
        { argv: ["list", "--older-than", "soon"], want: "--older-than" },
        { argv: ["summary", "extra"], want: '"extra"' },
        { argv: ["summary", "--domain", "x.test"], want: "--domain" },
      ]
    ) {
      await t.step(argv.join(" "), async () => {
        await open(async (target) => {
          const io = recordingIo(target);
          assert.equal(await queueCommand(argv, io), 2);
          assert.ok(io.err.includes(want), io.err);
          assert.equal(io.out, "");
        });
      });
    }
  });

  await t.step(
    "queue summary counts waiting recipients per domain in age columns (bounds N and N+1)",
    async () => {
      await open(async (target) => {
        await seedQueue(target, [
          { to: ["a@one.test", "b@two.test"], at: T0 }, // age 0: 5m column
          { to: ["c@one.test"], at: T0 - 5 * MIN }, // exactly 5m: still the 5m column
          { to: ["d@one.test"], at: T0 - 5 * MIN - 1 }, // 5m + 1 ms: the 15m column
          { to: ["e@one.test"], at: T0 - 7 * DAY }, // exactly 7d: the 7d column
          { to: ["f@one.test"], at: T0 - 7 * DAY - 1000 }, // older: 7d+
          { to: ["g@one.test"], at: T0, failed: ["g@one.test"] }, // failed: not waiting
        ]);
        const io = recordingIo(target);
        assert.equal(await queueCommand(["summary", "--json"], io, { now: () => T0 }), 0, io.err);
        assert.deepEqual(JSON.parse(io.out), {
          buckets: AGE_BUCKETS.map((b) => ({
            label: b.label,
            max_age_seconds: b.maxAgeSeconds ?? null,
          })),
          total: { recipients: 6, counts: [3, 1, 0, 0, 0, 0, 0, 0, 1, 1] },
          domains: [
            { domain: "one.test", recipients: 5, counts: [2, 1, 0, 0, 0, 0, 0, 0, 1, 1] },
            { domain: "two.test", recipients: 1, counts: [1, 0, 0, 0, 0, 0, 0, 0, 0, 0] },
          ],
        });
        const text = recordingIo(target);
        assert.equal(await queueCommand(["summary"], text, { now: () => T0 }), 0);
        const lines = text.out.trimEnd().split("\n").map((l) => l.split(/\s+/));
        assert.deepEqual(lines, [
          ["DOMAIN", "T", "5m", "15m", "1h", "4h", "12h", "1d", "2d", "4d", "7d", "7d+"],
          ["TOTAL", "6", "3", "1", "0", "0", "0", "0", "0", "0", "1", "1"],
          ["one.test", "5", "2", "1", "0", "0", "0", "0", "0", "0", "1", "1"],
          ["two.test", "1", "1", "0", "0", "0", "0", "0", "0", "0", "0", "0"],
        ]);
      });
    },
  );

  await t.step(
    "queue summary counts the mail waiting for ATRN, not the outbound queue (route mx)",
    async () => {
      await open(async (target) => {
        await seedQueue(target, [
          { to: ["a@one.test", "x@far.test"], at: T0, mx: ["x@far.test"] },
          // The same domain on both routes: only its ATRN recipient is counted.
          { to: ["b@one.test", "y@one.test"], at: T0 - 10 * MIN, mx: ["y@one.test"] },
          { to: ["z@far.test"], at: T0 - 2 * DAY, mx: ["z@far.test"] },
        ]);
        const io = recordingIo(target);
        assert.equal(await queueCommand(["summary", "--json"], io, { now: () => T0 }), 0, io.err);
        const parsed = JSON.parse(io.out);
        assert.deepEqual(parsed.total, { recipients: 2, counts: [1, 1, 0, 0, 0, 0, 0, 0, 0, 0] });
        assert.deepEqual(parsed.domains, [
          { domain: "one.test", recipients: 2, counts: [1, 1, 0, 0, 0, 0, 0, 0, 0, 0] },
        ]);
      });
    },
  );

  await t.step(
    "queue requeue puts a failed mx recipient back in the outbound queue, due at once",
    async () => {
      await open(async (target) => {
        const [m1] = await seedQueue(target, [
          {
            to: ["a@one.test", "x@far.test"],
            at: T0,
            mx: ["x@far.test"],
            failed: ["a@one.test", "x@far.test"],
          },
        ]);
        assert.ok(m1);
        assert.deepEqual(statuses(await listJson(target)), [
          "a@one.test:failed",
          "x@far.test:failed",
        ]);
        const io = recordingIo(target);
        assert.equal(await queueCommand(["requeue", "--domain", "far.test"], io), 0, io.err);
        assert.equal(io.out, 'Requeued 1 failed recipient in "far.test" (1 message)\n');
        const [listed] = await listJson(target, [], T0 + MIN);
        const mx = listed?.recipients.find((r) => r.address === "x@far.test") as
          | { status: string; route: string; next_attempt?: string }
          | undefined;
        assert.equal(mx?.status, "queued");
        assert.equal(mx?.route, "mx");
        assert.ok(mx?.next_attempt !== undefined && Date.parse(mx.next_attempt) <= T0 + MIN);
        assert.equal(listed?.recipients.find((r) => r.address === "a@one.test")?.status, "failed");
      });
    },
  );

  await t.step("queue delete by id and --domain --yes remove what they name (#14)", async () => {
    await open(async (target) => {
      const [m1, m2, m3] = await seedQueue(target, [
        { to: ["a@one.test"], at: T0 },
        { to: ["b@one.test", "c@two.test"], at: T0 + 1 },
        { to: ["d@two.test"], at: T0 + 2 },
      ]);
      assert.ok(m1 && m2 && m3);
      const byId = recordingIo(target);
      assert.equal(await queueCommand(["delete", m1], byId), 0, byId.err);
      assert.equal(byId.out, "Deleted 1 message\n");
      const domain = recordingIo(target);
      assert.equal(await queueCommand(["delete", "--yes", "--domain", "two.test"], domain), 0);
      assert.equal(domain.out, 'Removed recipients in "two.test" from 2 message(s)\n');
      assert.deepEqual(statuses(await listJson(target)), ["b@one.test:queued"]);
      const missing = recordingIo(target);
      assert.equal(await queueCommand(["delete", m3], missing), 1);
      assert.equal(missing.err, `error: Message "${m3}" not found\n`);
    });
  });

  await t.step(
    "queue summary of an empty queue is a TOTAL row of zeros (text) and no domains (JSON)",
    async () => {
      await open(async (target) => {
        const io = recordingIo(target);
        assert.equal(await queueCommand(["summary", "--json"], io), 0);
        const parsed = JSON.parse(io.out);
        assert.deepEqual(parsed.total, { recipients: 0, counts: AGE_BUCKETS.map(() => 0) });
        assert.deepEqual(parsed.domains, []);
        const text = recordingIo(target);
        assert.equal(await queueCommand(["summary"], text), 0);
        assert.match(text.out, /^TOTAL\s+0(\s+0){10}$/m);
      });
    },
  );
}

await onBothBackends("queue requeue, list filters and summary", cases);
