/**
 * MAIL and RCPT of the SMTP server role: check with the pure guards, then ask the sink, and
 * return what happens as an Outcome (the loop in receiver.ts applies it). A sink that throws
 * is a bug path: it is logged, the transaction is left (and so aborted), the peer gets
 * `451 4.3.0`. The body commands are in _receiver_body.ts.
 */
import type { Reply } from "../wire/reply.ts";
import { isPositive } from "../wire/reply.ts";
import { REPLIES } from "../wire/replies.ts";
import type { RcptTo, SinkTransaction } from "./sink.ts";
import { BodyLineCheck } from "../wire/body_check.ts";
import { ReceivedCount } from "../wire/received_count.ts";
import { checkMail, checkRcpt } from "./_receiver_checks.ts";
import type { Transaction } from "./_receiver_checks.ts";
import { endWith, leaveTransaction, mistake, say } from "./_receiver_outcome.ts";
import type { Outcome, ReceiverContext } from "./_receiver_types.ts";

/** DATA text line including CRLF (RFC 5321 §4.5.3.1.6), when the options do not say. */
export const DEFAULT_MAX_DATA_LINE_BYTES = 1000;

function isTransaction(v: SinkTransaction | Reply): v is SinkTransaction {
  return "addRecipient" in v;
}

/** MAIL FROM: a new transaction in the sink. */
export async function handleMail(ctx: ReceiverContext, args: string): Promise<Outcome> {
  const s = ctx.state;
  if (s.kind !== "ready") return mistake(REPLIES.badSequence);
  // Submission: nothing is accepted from a client that has not authenticated (RFC 4954 §6).
  if (ctx.options.auth !== undefined && ctx.authenticatedUser === undefined) {
    return mistake(REPLIES.authRequired);
  }
  const checked = checkMail(s.helo, args, ctx.checkContext);
  if (!checked.ok) {
    if (checked.reply === REPLIES.tooManyMessages) return endWith("tooManyMessages", checked.reply);
    if (checked.reply === REPLIES.sizeExceeded) ctx.options.events?.messageRefused("size");
    return mistake(checked.reply);
  }
  let began: SinkTransaction | Reply;
  try {
    began = await ctx.sink.begin(checked.value, ctx.sessionInfo);
  } catch (err) {
    ctx.log.error("sink_failed", { call: "begin", error: String(err) });
    return say(REPLIES.localError);
  }
  if (!isTransaction(began)) return say(began);
  const tx: Transaction = {
    sink: began,
    mail: checked.value,
    recipients: [],
    isChunking: false,
    chunkedBytes: 0,
    chunksDeadlineAt: 0,
    bodyLines: new BodyLineCheck(ctx.options.maxDataLineBytes ?? DEFAULT_MAX_DATA_LINE_BYTES),
    received: new ReceivedCount(),
  };
  return {
    replies: [REPLIES.senderOk],
    next: { state: { kind: "inTransaction", helo: s.helo, tx }, why: "MAIL" },
  };
}

/** RCPT TO: the guards, then the sink decides. */
export async function handleRcpt(ctx: ReceiverContext, args: string): Promise<Outcome> {
  const s = ctx.state;
  if (s.kind !== "inTransaction") return mistake(REPLIES.mailFirst);
  const checked = checkRcpt(s.tx, args, ctx.checkContext);
  if (!checked.ok) {
    if (checked.reply === REPLIES.tooManyRecipients) {
      ctx.options.events?.rcptRejected("too_many_recipients");
      // No mistake: the client sends the rest in a later transaction (RFC 5321 §4.5.3.1.10).
      // Counted as one, the 11th ended the session before DATA, and the message of the ones
      // taken never came. The RCPT spent the recipient budget (session_budget.ts) already.
      return say(checked.reply);
    }
    return mistake(checked.reply);
  }
  // A repeated recipient is answered 250 and kept once, with its first RCPT's DSN parameters
  // (as Postfix): each stored recipient is one delivery. Not under PRDR, whose replies after the
  // body go one per accepted RCPT.
  const keys = s.tx.recipients.length === 0 || s.tx.mail.prdr === true
    ? undefined
    : s.tx.recipientKeys ?? new Set(s.tx.recipients.map(recipientKey));
  const key = keys === undefined ? "" : recipientKey(checked.value);
  if (keys?.has(key) === true) return say(REPLIES.recipientOk);
  let r: Reply;
  try {
    // RFC 2920: a relaying sink may send its own DATA with this RCPT when DATA (or a BDAT
    // chunk, RFC 3030: the body follows without 354) is next.
    const dataFollows = ctx.reader.nextLineIs("DATA") || ctx.reader.nextLineStartsWith("BDAT ");
    r = await s.tx.sink.addRecipient(checked.value, { dataFollows });
  } catch (err) {
    ctx.log.error("sink_failed", { call: "addRecipient", id: s.tx.sink.id, error: String(err) });
    return { ...leaveTransaction(s, "sink failed"), replies: [REPLIES.localError] };
  }
  if (!isPositive(r)) return say(r);
  // Appended in place (the list is this transaction's own): a copy per RCPT made a message to
  // N recipients copy N²/2 entries (`submission.max_recipients` allows 100000).
  s.tx.recipients.push(checked.value);
  if (keys === undefined) return say(r);
  keys.add(key);
  if (s.tx.recipientKeys === keys) return say(r);
  const tx: Transaction = { ...s.tx, recipientKeys: keys };
  return { replies: [r], next: { state: { ...s, tx }, why: "RCPT" } };
}

/**
 * What makes two recipients one: the local part's content (RFC 5321 §2.4: it may be
 * case-sensitive) and the domain as its lower-case A-label; the bare `<Postmaster>` in any case.
 * A Quoted-string is only a way to write its content (RFC 5321 §4.1.2, RFC 5322 §3.2.4): the
 * quotes and a backslash's quoting are not part of it, so `"bob"`, `"b\ob"` and `bob` are one.
 */
function recipientKey(rcpt: RcptTo): string {
  const address = rcpt.address;
  const at = address.lastIndexOf("@");
  if (at < 0) return address.toLowerCase();
  const local = address.charCodeAt(0) === 0x22
    ? address.slice(1, at - 1).replace(/\\(.)/g, "$1")
    : address.slice(0, at);
  return `${local}@${rcpt.domain}`;
}
