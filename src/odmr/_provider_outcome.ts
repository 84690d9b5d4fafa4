/**
 * Small constructors for the ProviderOutcome a command handler of the ODMR session returns
 * (the loop in provider.ts applies it), named as the receiver's (src/smtp/_receiver_outcome.ts).
 * Pure.
 */
import type { Reply } from "../wire/reply.ts";
import type { ProviderOutcome } from "./_provider_types.ts";

/** Replies, and nothing else changes. */
export function say(...replies: Reply[]): ProviderOutcome {
  return { replies };
}

/** A peer mistake: the reply, and the error budget shared with the MX is spent. */
export function mistake(r: Reply): ProviderOutcome {
  return { replies: [r], isError: true };
}

/** The session ends after `replies`. */
export function endWith(...replies: Reply[]): ProviderOutcome {
  return { replies, end: true };
}
