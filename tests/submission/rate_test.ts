import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { SubmissionRate } from "../../src/submission/rate.ts";
import { isOwnedSender } from "../../src/submission/sink.ts";

Deno.test("SubmissionRate: N per hour pass, N+1 waits; the allowance comes back evenly", () => {
  let now = 0;
  const rate = new SubmissionRate({ messagesPerHour: 4, recipientsPerHour: 2, now: () => now });
  /** Takes `n` messages for alice at once: which were allowed. */
  const take = (n: number) => Array.from({ length: n }, () => rate.takeMessage("alice"));
  // The 4th of 4 per hour passes, the 5th waits.
  const fullHour = [true, true, true, true, false];
  assertEquals(take(5), fullHour);
  // A quarter of an hour gives one message back, not more.
  now = 15 * 60_000;
  assertEquals(take(2), [true, false]);
  // Never more than an hour's worth, however long the pause.
  now += 10 * 3_600_000;
  assertEquals(take(5), fullHour);
  // Recipients and users are counted apart.
  assertEquals([1, 2, 3].map(() => rate.takeRecipient("alice")), [true, true, false]);
  assertEquals(rate.takeMessage("bob"), true);
});

Deno.test("SubmissionRate: a clock stepped back takes no allowance away (as the AUTH throttle)", () => {
  let now = 10 * 3_600_000;
  const rate = new SubmissionRate({ messagesPerHour: 4, recipientsPerHour: 4, now: () => now });
  assertEquals(rate.takeMessage("alice"), true);
  assertEquals(rate.takeRecipient("alice"), true);
  // The wall clock steps back an hour (NTP after a boot, a manual fix): 3 of each are left,
  // not an allowance an hour in debt (every message and recipient refused for the next hour).
  now -= 3_600_000;
  const take = (what: () => boolean) => Array.from({ length: 4 }, what);
  assertEquals(take(() => rate.takeMessage("alice")), [true, true, true, false]);
  assertEquals(take(() => rate.takeRecipient("alice")), [true, true, true, false]);
  // And the allowance comes back from there, evenly.
  now += 15 * 60_000;
  assertEquals(take(() => rate.takeMessage("alice")), [true, false, false, false]);
});

Deno.test("isOwnedSender: the user's domains only, compared as A-labels; <> allowed", async (t) => {
  const rows: { from: string; want: boolean }[] = [
    { from: "alice@example.org", want: true },
    { from: "Alice@EXAMPLE.ORG.", want: true },
    { from: "", want: true },
    { from: "alice@sub.example.org", want: false },
    { from: "alice@example.org.evil.example", want: false },
    { from: "alice@[127.0.0.1]", want: false },
    { from: "alice", want: false },
    { from: "a@bücher.example", want: true },
  ];
  for (const row of rows) {
    await t.step(row.from || "<>", () => {
      assertEquals(isOwnedSender(row.from, ["example.org", "xn--bcher-kva.example"]), row.want);
    });
  }
});
