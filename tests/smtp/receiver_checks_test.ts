/**
 * Table tests for the SMTP server role's pure guards (src/smtp/_receiver_checks.ts): each row
 * is a state and an argument text, and the parsed value or the exact rejection. No sockets.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  checkBdat,
  checkBdatState,
  checkData,
  checkHelo,
  checkMail,
  checkRcpt,
  checkStartTls,
} from "../../src/smtp/_receiver_checks.ts";
import type {
  CheckContext,
  Checked,
  Helo,
  SessionState,
  Transaction,
} from "../../src/smtp/_receiver_checks.ts";
import { REPLIES } from "../../src/wire/replies.ts";
import type { Reply } from "../../src/wire/reply.ts";
import { BodyLineCheck } from "../../src/wire/body_check.ts";
import { ReceivedCount } from "../../src/wire/received_count.ts";
import type { SinkTransaction } from "../../src/smtp/sink.ts";

const EHLO: Helo = { name: "client.test", isExtended: true };
const HELO: Helo = { name: "client.test", isExtended: false };
const CTX: CheckContext = {
  maxMessageBytes: 1000,
  maxRecipients: 2,
  messagesAccepted: 0,
  maxMessagesPerSession: 5,
  offersPrdr: false,
};
const SINK: SinkTransaction = {
  id: "T1",
  addRecipient: () => Promise.resolve(REPLIES.recipientOk),
  write: () => Promise.resolve(),
  finish: () => Promise.resolve(REPLIES.ok),
  abort: () => Promise.resolve(),
};

function tx(opts: { recipients?: number; isChunking?: boolean; smtputf8?: boolean } = {}) {
  const t: Transaction = {
    sink: SINK,
    mail: { address: "a@b.test", params: opts.smtputf8 === true ? { smtputf8: true } : {} },
    recipients: Array.from({ length: opts.recipients ?? 0 }, (_, i) => ({
      address: `r${i}@d.test`,
      domain: "d.test",
    })),
    isChunking: opts.isChunking ?? false,
    chunkedBytes: 0,
    chunksDeadlineAt: 0,
    bodyLines: new BodyLineCheck(1000),
    received: new ReceivedCount(),
  };
  return t;
}

/** The rejection of a guard, or "ok". */
function outcome<T>(c: Checked<T>): Reply | "ok" {
  return c.ok ? "ok" : c.reply;
}

Deno.test("checkHelo: a name is required; words after it are ignored", async (t) => {
  const rows = [
    { args: "client.test", want: "ok" as const },
    { args: "client.test extra words", want: "ok" as const },
    { args: "[192.0.2.1]", want: "ok" as const },
    { args: "", want: REPLIES.heloSyntax },
  ];
  for (const row of rows) {
    await t.step(JSON.stringify(row.args), () => {
      assertEquals(outcome(checkHelo(row.args, true)), row.want);
    });
  }
  assertEquals(checkHelo("c.test x", false), {
    ok: true,
    value: { name: "c.test", isExtended: false },
  });
});

Deno.test("checkMail: paths, parameters, limits at N and N+1", async (t) => {
  const rows: {
    name: string;
    helo?: Helo;
    args: string;
    ctx?: Partial<CheckContext>;
    want: Reply | "ok";
  }[] = [
    { name: "plain", args: "FROM:<a@b.test>", want: "ok" },
    { name: "null reverse-path", args: "FROM:<>", want: "ok" },
    { name: "no brackets", args: "FROM:a@b.test", want: REPLIES.mailSyntax },
    {
      name: "parameters after HELO",
      helo: HELO,
      args: "FROM:<a@b.test> SIZE=10",
      want: REPLIES.paramUnknown,
    },
    { name: "unknown parameter", args: "FROM:<a@b.test> FROB=1", want: REPLIES.paramUnknown },
    {
      name: "duplicate parameter",
      args: "FROM:<a@b.test> SIZE=1 SIZE=2",
      want: REPLIES.paramDuplicate,
    },
    {
      name: "BINARYMIME is not offered",
      args: "FROM:<a@b.test> BODY=BINARYMIME",
      want: REPLIES.paramUnknown,
    },
    { name: "UTF-8 without SMTPUTF8", args: "FROM:<é@b.test>", want: REPLIES.nonAsciiAddress },
    { name: "UTF-8 with SMTPUTF8", args: "FROM:<é@b.test> SMTPUTF8", want: "ok" },
    { name: "SIZE at the limit (N)", args: "FROM:<a@b.test> SIZE=1000", want: "ok" },
    {
      name: "SIZE over the limit (N+1)",
      args: "FROM:<a@b.test> SIZE=1001",
      want: REPLIES.sizeExceeded,
    },
    {
      name: "messages per session at N-1",
      args: "FROM:<a@b.test>",
      ctx: { messagesAccepted: 4 },
      want: "ok",
    },
    {
      name: "messages per session at N",
      args: "FROM:<a@b.test>",
      ctx: { messagesAccepted: 5 },
      want: REPLIES.tooManyMessages,
    },
    {
      name: "local part of 65 octets",
      args: `FROM:<${"x".repeat(65)}@b.test>`,
      want: REPLIES.badSenderAddress,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      assertEquals(
        outcome(checkMail(row.helo ?? EHLO, row.args, { ...CTX, ...row.ctx })),
        row.want,
      );
    });
  }
});

Deno.test("checkRcpt: paths, parameters, the recipient limit at N and N+1", async (t) => {
  const rows: { name: string; tx: Transaction; args: string; want: Reply | "ok" }[] = [
    { name: "plain", tx: tx(), args: "TO:<x@d.test>", want: "ok" },
    { name: "postmaster without a domain", tx: tx(), args: "TO:<Postmaster>", want: "ok" },
    { name: "null forward-path", tx: tx(), args: "TO:<>", want: REPLIES.nullRecipient },
    { name: "syntax", tx: tx(), args: "TO:x@d.test", want: REPLIES.rcptSyntax },
    {
      name: "DSN parameters",
      tx: tx(),
      args: "TO:<x@d.test> NOTIFY=NEVER ORCPT=rfc822;x@d.test",
      want: "ok",
    },
    { name: "unknown parameter", tx: tx(), args: "TO:<x@d.test> FROB", want: REPLIES.paramUnknown },
    {
      name: "UTF-8 without SMTPUTF8 at MAIL",
      tx: tx(),
      args: "TO:<é@d.test>",
      want: REPLIES.nonAsciiAddress,
    },
    {
      name: "UTF-8 with SMTPUTF8 at MAIL",
      tx: tx({ smtputf8: true }),
      args: "TO:<é@d.test>",
      want: "ok",
    },
    { name: "recipient N (2)", tx: tx({ recipients: 1 }), args: "TO:<x@d.test>", want: "ok" },
    {
      name: "recipient N+1",
      tx: tx({ recipients: 2 }),
      args: "TO:<x@d.test>",
      want: REPLIES.tooManyRecipients,
    },
    {
      name: "after BDAT began",
      tx: tx({ recipients: 1, isChunking: true }),
      args: "TO:<x@d.test>",
      want: REPLIES.badSequence,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      assertEquals(outcome(checkRcpt(row.tx, row.args, CTX)), row.want);
    });
  }
});

Deno.test("checkData: no parameters, recipients first, not after BDAT", async (t) => {
  const rows: { name: string; tx: Transaction; args: string; want: Reply | "ok" }[] = [
    { name: "ready", tx: tx({ recipients: 1 }), args: "", want: "ok" },
    { name: "with a parameter", tx: tx({ recipients: 1 }), args: "X", want: REPLIES.noParameters },
    { name: "no recipient", tx: tx(), args: "", want: REPLIES.noValidRecipients },
    {
      name: "after BDAT",
      tx: tx({ recipients: 1, isChunking: true }),
      args: "",
      want: REPLIES.mixedDataBdat,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => assertEquals(outcome(checkData(row.tx, row.args)), row.want));
  }
});

Deno.test("checkBdat: octets and LAST; a bad command still gives the count to skip", async (t) => {
  const rows = [
    { args: "10", want: { ok: true, value: { octets: 10, isLast: false } } },
    { args: "0 LAST", want: { ok: true, value: { octets: 0, isLast: true } } },
    { args: "5 last", want: { ok: true, value: { octets: 5, isLast: true } } },
    { args: "5 FIRST", want: { ok: false, reply: REPLIES.bdatSyntax, octets: 5 } },
    { args: "x", want: { ok: false, reply: REPLIES.bdatSyntax, octets: undefined } },
    { args: "", want: { ok: false, reply: REPLIES.bdatSyntax, octets: undefined } },
    { args: "-1", want: { ok: false, reply: REPLIES.bdatSyntax, octets: undefined } },
  ];
  for (const row of rows) {
    await t.step(JSON.stringify(row.args), () => assertEquals(checkBdat(row.args), row.want));
  }
});

Deno.test("checkBdatState: only in a transaction with a recipient", async (t) => {
  const withRcpt = tx({ recipients: 1 });
  const rows: { name: string; state: SessionState; want: Reply | "ok" }[] = [
    { name: "before EHLO", state: { kind: "greeted" }, want: REPLIES.heloFirst },
    { name: "no transaction", state: { kind: "ready", helo: EHLO }, want: REPLIES.mailFirst },
    {
      name: "no recipient",
      state: { kind: "inTransaction", helo: EHLO, tx: tx() },
      want: REPLIES.noValidRecipients,
    },
    {
      name: "ready to take a chunk",
      state: { kind: "inTransaction", helo: EHLO, tx: withRcpt },
      want: "ok",
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => assertEquals(outcome(checkBdatState(row.state)), row.want));
  }
});

Deno.test("checkStartTls: offered, after EHLO, once, without parameters (#10)", async (t) => {
  const rows: {
    name: string;
    args: string;
    isOffered: boolean;
    isSecure: boolean;
    hasGreeted: boolean;
    want: Reply | undefined;
  }[] = [
    {
      name: "after EHLO",
      args: "",
      isOffered: true,
      isSecure: false,
      hasGreeted: true,
      want: undefined,
    },
    {
      name: "before EHLO",
      args: "",
      isOffered: true,
      isSecure: false,
      hasGreeted: false,
      want: REPLIES.heloFirst,
    },
    {
      name: "not offered",
      args: "",
      isOffered: false,
      isSecure: false,
      hasGreeted: true,
      want: REPLIES.notImplemented,
    },
    {
      name: "not offered, before EHLO",
      args: "",
      isOffered: false,
      isSecure: false,
      hasGreeted: false,
      want: REPLIES.notImplemented,
    },
    {
      name: "already secure",
      args: "",
      isOffered: true,
      isSecure: true,
      hasGreeted: true,
      want: REPLIES.alreadySecure,
    },
    {
      name: "with a parameter",
      args: "X",
      isOffered: true,
      isSecure: false,
      hasGreeted: true,
      want: REPLIES.noParameters,
    },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      assertEquals(checkStartTls(row.args, row), row.want);
    });
  }
});
