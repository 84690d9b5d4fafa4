/**
 * The envelope phase of one outbound transaction on a client link: MAIL, each RCPT and DATA,
 * as one RFC 2920 group or one at a time, each reply settling recipients in the ledger (4xx
 * deferred, 5xx failed). Ends in `data` (354: the body may follow), `done` (nothing to send;
 * the transaction was reset) or `lost`. An out-of-place reply drops the link.
 */
import type { Reply } from "../wire/reply.ts";
import { isPermanent, isPositive, isTransient } from "../wire/reply.ts";
import type { Capabilities } from "../wire/ehlo.ts";
import type { SettleOutcome } from "../queue/types.ts";
import { type ClientLink, encodeLines, LINK_PROTOCOL_ERROR } from "./client/link.ts";
import { planEnvelope } from "./_sender_commands.ts";
import type { RecipientLedger } from "./_sender_ledger.ts";
import type { OutboundMessage, SenderTimeouts } from "./_sender_types.ts";

/** The envelope of one transaction, planned; recipients not in `toSend` are settled. */
export interface PlannedSend {
  readonly kind: "send";
  readonly mailLine: string;
  /** The server answers the body with 353, one reply per accepted recipient, a final reply. */
  readonly isPrdr: boolean;
  /** RCPT lines, one per entry of `toSend` (recipient positions). */
  readonly rcptLines: readonly string[];
  readonly toSend: readonly number[];
}

/** `none`: every recipient was settled without I/O (nothing can be offered to this peer). */
export type Planned = { readonly kind: "none" } | PlannedSend;

/** How the envelope phase ended. */
export type EnvelopeEnd =
  | { readonly kind: "data"; readonly accepted: readonly number[] }
  | { readonly kind: "done" }
  | { readonly kind: "lost" };

/** Where a refusal came: the same code can mean different things (552 at RCPT). */
type Stage = "mail" | "rcpt" | "data";

/** The link and its deadlines, for one transaction. */
export interface EnvelopeContext {
  readonly link: ClientLink;
  readonly timeouts: SenderTimeouts;
}

/** Decides the envelope; recipients that cannot be offered are settled here, without I/O. */
export function planTransaction(
  message: OutboundMessage,
  caps: Capabilities,
  ledger: RecipientLedger,
): Planned {
  if (message.recipients.length === 0) return { kind: "none" };
  const plan = planEnvelope(message, caps);
  if (plan.kind === "refused") {
    ledger.settleRest("failed", plan.reply);
    return { kind: "none" };
  }
  const toSend: number[] = [];
  const rcptLines: string[] = [];
  plan.rcptLines.forEach((line, i) => {
    if (typeof line === "string") {
      toSend.push(i);
      rcptLines.push(line);
    } else {
      ledger.settle(i, "failed", line.refused);
    }
  });
  if (toSend.length === 0) return { kind: "none" };
  return { kind: "send", mailLine: plan.mailLine, isPrdr: plan.isPrdr, rcptLines, toSend };
}

/** MAIL, every RCPT and DATA: one RFC 2920 group. */
export function envelopeLines(planned: PlannedSend): Uint8Array[] {
  return encodeLines([planned.mailLine, ...planned.rcptLines, "DATA"]);
}

/**
 * MAIL, every RCPT and DATA in one group (RFC 2920), then the replies in order. `isWritten`:
 * the group already went out behind the previous message's body (sendMany). `whileWaiting`
 * runs once the group is on the wire, before the first reply is read.
 */
export async function envelopePipelined(
  ctx: EnvelopeContext,
  planned: PlannedSend,
  ledger: RecipientLedger,
  opts: { readonly isWritten: boolean; readonly whileWaiting: () => void },
): Promise<EnvelopeEnd> {
  const { link, timeouts } = ctx;
  if (!opts.isWritten && !(await link.writeGroup(envelopeLines(planned), timeouts.mailMs))) {
    return { kind: "lost" };
  }
  opts.whileWaiting();
  const replies = await readEnvelopeReplies(ctx, planned, ledger);
  if (replies === undefined) return { kind: "lost" };
  const { isMailAccepted, accepted } = replies;
  const data = await link.read(timeouts.dataInitMs);
  if (data.kind === "lost") return { kind: "lost" };
  if (data.reply.code === 354) {
    if (accepted.length > 0) return { kind: "data", accepted };
    // RFC 2920 §3.1: DATA went out with the group and got 354 although no recipient was
    // accepted: the only way out is an empty message, which the server must refuse.
    if (!(await link.writeLines(["."], timeouts.dataBlockMs))) return { kind: "lost" };
    const end = await link.read(timeouts.dataFinalMs);
    return end.kind === "lost" ? { kind: "lost" } : { kind: "done" };
  }
  if (accepted.length > 0 && !settleAll(link, data.reply, accepted, ledger, "data")) {
    return { kind: "lost" };
  }
  if (isMailAccepted && !(await reset(ctx))) return { kind: "lost" };
  return { kind: "done" };
}

/** How the replies to a pipelined MAIL and its RCPTs settled the envelope. */
export interface EnvelopeReplies {
  readonly isMailAccepted: boolean;
  /** Positions of the recipients the peer accepted, in RCPT order. */
  readonly accepted: readonly number[];
}

/**
 * Reads the replies to a pipelined MAIL and each of its RCPTs, in order (RFC 2920 §3.1),
 * settling every refusal; undefined once the link is lost. After a refused MAIL the RCPT
 * replies (503s) are read only to stay in step.
 */
export async function readEnvelopeReplies(
  ctx: EnvelopeContext,
  planned: PlannedSend,
  ledger: RecipientLedger,
): Promise<EnvelopeReplies | undefined> {
  const { link, timeouts } = ctx;
  const mail = await link.read(timeouts.mailMs);
  if (mail.kind === "lost") return undefined;
  const isMailAccepted = settleAfterMail(link, mail.reply, planned.toSend, ledger);
  if (isMailAccepted === undefined) return undefined;
  const accepted: number[] = [];
  for (const i of planned.toSend) {
    const rcpt = await link.read(timeouts.rcptMs);
    if (rcpt.kind === "lost") return undefined;
    if (isMailAccepted && !settleRcpt(link, rcpt.reply, i, ledger, accepted)) return undefined;
  }
  return { isMailAccepted, accepted };
}

/** MAIL, each RCPT, DATA, one reply at a time. */
export async function envelopeLockStep(
  ctx: EnvelopeContext,
  planned: PlannedSend,
  ledger: RecipientLedger,
): Promise<EnvelopeEnd> {
  const { link, timeouts } = ctx;
  const { mailLine, rcptLines, toSend } = planned;
  const mail = await link.command(mailLine, timeouts.mailMs);
  if (mail.kind === "lost") return { kind: "lost" };
  const isMailAccepted = settleAfterMail(link, mail.reply, toSend, ledger);
  if (isMailAccepted === undefined) return { kind: "lost" };
  if (!isMailAccepted) return { kind: "done" };
  const accepted: number[] = [];
  for (const [n, i] of toSend.entries()) {
    const rcpt = await link.command(rcptLines[n] ?? "", timeouts.rcptMs);
    if (rcpt.kind === "lost") return { kind: "lost" };
    if (!settleRcpt(link, rcpt.reply, i, ledger, accepted)) return { kind: "lost" };
  }
  // No recipient accepted, so no DATA (RFC 5321 §3.3); RSET ends the transaction.
  if (accepted.length === 0) return (await reset(ctx)) ? { kind: "done" } : { kind: "lost" };
  const data = await link.command("DATA", timeouts.dataInitMs);
  if (data.kind === "lost") return { kind: "lost" };
  if (data.reply.code === 354) return { kind: "data", accepted };
  if (!settleAll(link, data.reply, accepted, ledger, "data")) return { kind: "lost" };
  return (await reset(ctx)) ? { kind: "done" } : { kind: "lost" };
}

/** RSET: the transaction is over without a message; false when the link was lost. */
export async function reset(ctx: EnvelopeContext): Promise<boolean> {
  const answer = await ctx.link.command("RSET", ctx.timeouts.mailMs);
  if (answer.kind === "lost") return false;
  if (isPositive(answer.reply)) return true;
  ctx.link.lose(LINK_PROTOCOL_ERROR, `RSET refused with ${answer.reply.code}`);
  return false;
}

/** The reply after the body: settles `which`; false when it was out of place (link dropped). */
export function settleFinal(
  link: ClientLink,
  reply: Reply,
  which: readonly number[],
  ledger: RecipientLedger,
): boolean {
  if (isPositive(reply)) {
    for (const i of which) ledger.settle(i, "delivered", reply);
    return true;
  }
  return settleAll(link, reply, which, ledger, "data");
}

/** true: MAIL accepted; false: every recipient settled by the refusal; undefined: lost. */
export function settleAfterMail(
  link: ClientLink,
  reply: Reply,
  toSend: readonly number[],
  ledger: RecipientLedger,
): boolean | undefined {
  if (isPositive(reply)) return true;
  return settleAll(link, reply, toSend, ledger, "mail") ? false : undefined;
}

/** Settles one RCPT reply; false when it was out of place (the link is then dropped). */
export function settleRcpt(
  link: ClientLink,
  reply: Reply,
  i: number,
  ledger: RecipientLedger,
  accepted: number[],
): boolean {
  if (isPositive(reply)) {
    accepted.push(i);
    return true;
  }
  return settleAll(link, reply, [i], ledger, "rcpt");
}

/** Settles `which` by a refusal; an out-of-place reply drops the link (false). */
export function settleAll(
  link: ClientLink,
  reply: Reply,
  which: readonly number[],
  ledger: RecipientLedger,
  at: Stage,
): boolean {
  const outcome = refusalOutcome(reply, at);
  if (outcome === undefined) {
    link.lose(LINK_PROTOCOL_ERROR, `unexpected reply ${reply.code} to ${at.toUpperCase()}`);
    return false;
  }
  for (const i of which) ledger.settle(i, outcome, reply);
  return true;
}

/** 4xx → deferred, 5xx → failed (552 at RCPT → deferred); anything else is out of place. */
function refusalOutcome(reply: Reply, at: Stage): Exclude<SettleOutcome, "delivered"> | undefined {
  if (isTransient(reply)) return "deferred";
  // RFC 5321 §4.5.3.1.10: RFC 821 used 552 for "too many recipients"; treat it as temporary.
  if (at === "rcpt" && reply.code === 552) return "deferred";
  if (isPermanent(reply)) return "failed";
  return undefined;
}
