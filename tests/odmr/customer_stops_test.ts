/**
 * How the customer's dialogue ends, without sockets: the exit code and result for each reply to
 * ATRN (README.md "Exit codes"; RFC 2645 §5.2) and for each way the link can be lost.
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { atrnStop, lostStop } from "../../src/odmr/_customer_stops.ts";
import type { Loss } from "../../src/smtp/client/link.ts";
import { reply } from "../../src/wire/reply.ts";

const WHERE = "provider.test:366";

Deno.test("atrnStop: each reply to ATRN gives the README's exit code and result", async (t) => {
  const rows: {
    code: number;
    enhanced: string;
    want: [number, string] | undefined;
    why: string;
  }[] = [
    { code: 250, enhanced: "2.0.0", want: undefined, why: "reversal: no stop" },
    { code: 453, enhanced: "4.7.0", want: [0, "noMail"], why: "no mail waiting is success" },
    { code: 450, enhanced: "4.7.1", want: [4, "refused"], why: "domain not yours" },
    { code: 502, enhanced: "5.5.1", want: [4, "refused"], why: "ATRN not available" },
    { code: 530, enhanced: "5.7.0", want: [4, "refused"], why: "AUTH required" },
    { code: 451, enhanced: "4.3.0", want: [5, "temporary"], why: "deferred" },
    { code: 421, enhanced: "4.3.2", want: [5, "temporary"], why: "another 4xx is temporary" },
    { code: 454, enhanced: "4.7.0", want: [5, "temporary"], why: "4xx, however worded" },
    { code: 554, enhanced: "5.7.1", want: [4, "refused"], why: "another 5xx is a refusal" },
  ];
  for (const row of rows) {
    await t.step(`${row.code}: ${row.why}`, () => {
      const s = atrnStop(reply(row.code, row.enhanced, "text"), WHERE);
      assertEquals(s === undefined ? undefined : [s.exitCode, s.result], row.want);
      if (s !== undefined) assertMatch(s.message, /"provider\.test:366"/, "names the server");
    });
  }
});

Deno.test("lostStop: every way of losing the link is a temporary failure (exit 5) that says how", async (t) => {
  const rows: { loss: Loss; says: RegExp }[] = [
    {
      loss: { cause: "closing", reply: reply(421, "4.3.2", "shutting down"), reason: "421" },
      says: /closed: 421 4\.3\.2 shutting down/,
    },
    { loss: { cause: "eof", reply: reply(421, "4.4.2", "x"), reason: "eof" }, says: /closed by/ },
    {
      loss: { cause: "timeout", reply: reply(421, "4.4.2", "x"), reason: "t" },
      says: /Timed out/,
    },
    {
      loss: { cause: "garbage", reply: reply(421, "4.4.2", "x"), reason: "no code" },
      says: /Bad reply .*: no code/,
    },
    {
      loss: { cause: "write", reply: reply(421, "4.4.2", "x"), reason: "EPIPE" },
      says: /lost: EPIPE/,
    },
    {
      loss: { cause: "local", reply: reply(421, "4.4.2", "x"), reason: "aborted" },
      says: /lost: aborted/,
    },
  ];
  for (const { loss, says } of rows) {
    await t.step(loss.cause, () => {
      const s = lostStop(loss, WHERE);
      assertEquals([s.exitCode, s.result], [5, "temporary"]);
      assertMatch(s.message, says);
      assertMatch(s.message, /"provider\.test:366"/, "names the server");
    });
  }
});
