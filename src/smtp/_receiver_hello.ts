/**
 * EHLO, HELO and RSET of the SMTP server role, as Outcomes for the loop in receiver.ts. Both
 * greetings and RSET leave an open transaction (RFC 5321 §4.1.4: the sink aborts it); the
 * EHLO keywords follow from the connection (no STARTTLS once secure, no AUTH once proved).
 */
import { ehloReply, heloReply, REPLIES } from "../wire/replies.ts";
import { checkHelo, ehloKeywords } from "./_receiver_checks.ts";
import { leaveTransaction, mistake } from "./_receiver_outcome.ts";
import type { Outcome, ReceiverContext } from "./_receiver_types.ts";

/** EHLO (`isExtended`) or HELO: the client's name, and the capabilities offered now. */
export function handleHello(ctx: ReceiverContext, args: string, isExtended: boolean): Outcome {
  const checked = checkHelo(args, isExtended);
  if (!checked.ok) return mistake(checked.reply);
  const { options, conn } = ctx;
  const keywords = ehloKeywords({
    maxMessageBytes: options.maxMessageBytes,
    canStartTls: options.tls !== undefined && !conn.isSecure,
    offersPrdr: options.offersPrdr === true,
    saysLastEnds: options.saysLastEnds === true,
    ...(options.auth !== undefined && ctx.authenticatedUser === undefined
      ? { authMechanisms: options.auth.mechanisms(conn.isSecure) }
      : {}),
  });
  return {
    replies: [isExtended ? ehloReply(options.hostname, keywords) : heloReply(options.hostname)],
    next: { state: { kind: "ready", helo: checked.value }, why: isExtended ? "EHLO" : "HELO" },
  };
}

/** RSET: the transaction, if any, is dropped; the greeting and AUTH stay. */
export function handleRset(ctx: ReceiverContext): Outcome {
  return { ...leaveTransaction(ctx.state, "RSET"), replies: [REPLIES.resetOk] };
}
