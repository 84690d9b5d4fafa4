/**
 * How the local server's refusals go upstream, where the provider settles each recipient by
 * the reply and the stage it came at (4xx deferred, 5xx failed; RFC 5321 §4.5.3.1.10: a 552 at
 * RCPT is RFC 821's "too many recipients", temporary). Pure.
 */
import { isPermanent, isPositive, isTransient } from "../../wire/reply.ts";
import type { Reply } from "../../wire/reply.ts";
import { LOCAL_REPLIES } from "./_local_link.ts";

/**
 * A local refusal of a pipelined MAIL, as the reply to each RCPT upstream: the same code,
 * enhanced code and text, so the provider settles each recipient as it would have for a
 * refused MAIL (4xx deferred, 5xx failed). 552 is the one code the provider reads
 * differently at RCPT (RFC 821's "too many recipients": deferred), so a permanent 552 from
 * MAIL (size) goes up as 554. Anything outside 4xx/5xx is out of place: temporary.
 */
export function mailRefusalForRecipients(r: Reply): Reply {
  if (r.code === 552) return { ...r, code: 554 };
  if (isTransient(r) || isPermanent(r)) return r;
  return LOCAL_REPLIES.unavailable;
}

/**
 * A refusal of the one recipient's RCPT (or of MAIL, as mapped above) given as the reply at
 * the end of data instead, for a RCPT answered 250 ahead of the local reply: the provider must
 * settle the recipient as it would have at RCPT. The same reply, except a 552, which is
 * temporary at RCPT but permanent after the body: it goes up as 452 (its enhanced code's class
 * with it). Anything outside 4xx/5xx is out of place: temporary.
 */
export function refusalAsFinal(r: Reply): Reply {
  if (r.code === 552) {
    const enhanced = r.enhanced === undefined ? undefined : `4${r.enhanced.slice(1)}`;
    return enhanced === undefined
      ? { code: 452, lines: r.lines }
      : { code: 452, enhanced, lines: r.lines };
  }
  if (isTransient(r) || isPermanent(r)) return r;
  return LOCAL_REPLIES.unavailable;
}

/**
 * Several LMTP replies as one (a PRDR transaction ended with `finish` after all): positive
 * only when every recipient took it; else a temporary refusal first, so nothing is lost.
 */
export function oneReply(replies: readonly Reply[]): Reply {
  if (replies.every(isPositive)) return replies[0] ?? LOCAL_REPLIES.unavailable;
  return replies.find(isTransient) ?? replies.find((r) => !isPositive(r)) ??
    LOCAL_REPLIES.unavailable;
}

/** What the local replies to MAIL (when sent with it), RCPT and DATA of an envelope sent ahead mean. */
export interface AheadOutcome {
  /** "go": the body goes after the 354; else the reply at the end of data. */
  readonly result: "go" | Reply;
  /** MAIL was refused: this is its refusal as each recipient's. */
  readonly mailRefusal?: Reply;
  readonly isRcptRefused: boolean;
  /** A 354 came without an accepted recipient: the link must be dropped (no end of data). */
  readonly mustBreak: boolean;
}

/** See AheadOutcome; `mailReply` undefined: MAIL was accepted before. */
export function aheadOutcome(
  mailReply: Reply | undefined,
  rcptReply: Reply,
  dataReply: Reply,
): AheadOutcome {
  const mailRefusal = mailReply !== undefined && mailReply.code !== 250
    ? mailRefusalForRecipients(mailReply)
    : undefined;
  const isRcptRefused = mailRefusal === undefined && !isPositive(rcptReply);
  const refusal = mailRefusal ?? (isRcptRefused ? rcptReply : undefined);
  if (refusal === undefined) {
    const result = dataReply.code === 354
      ? "go"
      : isTransient(dataReply) || isPermanent(dataReply)
      ? dataReply
      : LOCAL_REPLIES.unavailable;
    return { result, isRcptRefused, mustBreak: false };
  }
  return {
    result: refusalAsFinal(refusal),
    ...(mailRefusal === undefined ? {} : { mailRefusal }),
    isRcptRefused,
    mustBreak: dataReply.code === 354,
  };
}
