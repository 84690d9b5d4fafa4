/**
 * Small constructors for the Outcome a receiver command handler returns (the loop in
 * receiver.ts applies it). Pure.
 */
import type { Reply } from "../wire/reply.ts";
import type { SessionState } from "./_receiver_checks.ts";
import type { EndReason, Next, Outcome } from "./_receiver_types.ts";

/** Replies, and nothing else changes. */
export function say(...replies: Reply[]): Outcome {
  return { replies };
}

/** A peer mistake: the reply, and the error budget is spent. */
export function mistake(r: Reply): Outcome {
  return { replies: [r], isError: true };
}

/** No progress, and no mistake either: the reply, and the idle budget is spent. */
export function idle(r: Reply): Outcome {
  return { replies: [r], isIdle: true };
}

/** The session ends after `replies`. */
export function endWith(reason: EndReason, ...replies: Reply[]): Outcome {
  return { replies, end: reason };
}

/** Back to `ready` when a transaction is open (the loop aborts it in the sink); else nothing. */
export function leaveTransaction(state: SessionState, why: string): { readonly next?: Next } {
  return state.kind === "inTransaction"
    ? { next: { state: { kind: "ready", helo: state.helo }, why } }
    : {};
}
