/**
 * The session budget shared by the MX receiver and the ODMR port, without sockets: which
 * commands count as idle (a table), and the error and idle limits at N and N+1.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { isIdleCommand, SessionBudget } from "../../src/smtp/session_budget.ts";
import type { IdleContext } from "../../src/smtp/session_budget.ts";

const FRESH: IdleContext = { hasSaidHello: false, isInTransaction: false };
const GREETED: IdleContext = { hasSaidHello: true, isInTransaction: false };
const IN_TRANSACTION: IdleContext = { hasSaidHello: true, isInTransaction: true };

Deno.test("isIdleCommand: what moves a session forward and what does not (#10)", async (t) => {
  const rows: { verb: string; ctx: IdleContext; want: boolean; why: string }[] = [
    { verb: "NOOP", ctx: GREETED, want: true, why: "NOOP does nothing" },
    { verb: "NOOP", ctx: IN_TRANSACTION, want: true, why: "not even in a transaction" },
    { verb: "HELP", ctx: GREETED, want: true, why: "HELP changes no state" },
    { verb: "VRFY", ctx: GREETED, want: true, why: "VRFY changes no state" },
    { verb: "RSET", ctx: GREETED, want: true, why: "RSET with nothing to reset" },
    { verb: "RSET", ctx: IN_TRANSACTION, want: false, why: "RSET that aborts a transaction" },
    { verb: "EHLO", ctx: FRESH, want: false, why: "the first EHLO is needed" },
    { verb: "HELO", ctx: FRESH, want: false, why: "the first HELO is needed" },
    { verb: "EHLO", ctx: GREETED, want: true, why: "EHLO again" },
    { verb: "HELO", ctx: GREETED, want: true, why: "HELO again" },
    { verb: "MAIL", ctx: GREETED, want: false, why: "MAIL opens a transaction" },
    { verb: "RCPT", ctx: IN_TRANSACTION, want: false, why: "RCPT adds a recipient" },
    { verb: "DATA", ctx: IN_TRANSACTION, want: false, why: "DATA carries the message" },
    { verb: "AUTH", ctx: GREETED, want: false, why: "AUTH (failures have a limit of their own)" },
    { verb: "ATRN", ctx: GREETED, want: false, why: "ATRN turns the line round" },
    { verb: "STARTTLS", ctx: GREETED, want: false, why: "STARTTLS starts a new session" },
  ];
  for (const row of rows) {
    await t.step(`${row.verb}: ${row.why}`, () => {
      assertEquals(isIdleCommand(row.verb, row.ctx), row.want);
    });
  }
});

/** How many times `spend` returns false before the first true (at most `cap` calls). */
function spentAfter(spend: () => boolean, cap = 1_000): number {
  for (let n = 1; n <= cap; n++) if (spend()) return n;
  return Infinity;
}

Deno.test("SessionBudget: maxErrors errors are tolerated, the next one ends it (N and N+1)", async (t) => {
  for (const maxErrors of [0, 1, 3, 10]) {
    await t.step(`maxErrors ${maxErrors}`, () => {
      const budget = new SessionBudget({ maxErrors });
      assertEquals(spentAfter(() => budget.spendError()), maxErrors + 1);
      assertEquals(budget.errors, maxErrors + 1);
    });
  }
  await t.step("progress does not forgive errors", () => {
    const budget = new SessionBudget({ maxErrors: 2 });
    budget.spendError();
    budget.spendError();
    budget.progress();
    assertEquals(budget.spendError(), true);
  });
});

Deno.test("SessionBudget: maxIdleCommands idle commands are tolerated, progress restarts the count", async (t) => {
  await t.step("N idle commands pass, N+1 ends it", () => {
    const budget = new SessionBudget({ maxErrors: 10, maxIdleCommands: 10 });
    assertEquals(spentAfter(() => budget.spendIdle()), 11);
  });
  await t.step("progress after N restarts the count", () => {
    const budget = new SessionBudget({ maxErrors: 10, maxIdleCommands: 3 });
    for (let i = 0; i < 3; i++) assertEquals(budget.spendIdle(), false);
    budget.progress();
    assertEquals(spentAfter(() => budget.spendIdle()), 4);
  });
  await t.step("no limit: never spent, and idle commands are not errors", () => {
    const budget = new SessionBudget({ maxErrors: 0 });
    assertEquals(spentAfter(() => budget.spendIdle()), Infinity);
    assertEquals(budget.errors, 0);
  });
});

Deno.test("SessionBudget: maxAttempts attempts at a message are tolerated, the next one ends it (N and N+1); progress restarts the count", async (t) => {
  for (const maxAttempts of [0, 1, 4, 100]) {
    await t.step(`maxAttempts ${maxAttempts}`, () => {
      const budget = new SessionBudget({ maxErrors: 0, maxAttempts });
      assertEquals(spentAfter(() => budget.spendAttempt()), maxAttempts + 1);
    });
  }
  await t.step("a message accepted (progress) restarts the count", () => {
    const budget = new SessionBudget({ maxErrors: 0, maxAttempts: 2 });
    budget.spendAttempt();
    budget.spendAttempt();
    budget.progress();
    assertEquals(spentAfter(() => budget.spendAttempt()), 3);
  });
  await t.step("without maxAttempts (a trusted peer) nothing ends", () => {
    const budget = new SessionBudget({ maxErrors: 0 });
    assertEquals(spentAfter(() => budget.spendAttempt()), Infinity);
  });
});
