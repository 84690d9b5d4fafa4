/**
 * Hooks the ODMR provider calls for counters (metrics live in src/observe and implement
 * this); sessions never import the metrics registry directly.
 */

/** ATRN outcomes as counted (README.md `odmr_relay_atrn_total{outcome}`). */
export type AtrnOutcome = "250" | "450" | "451" | "453" | "530" | "535";

/** Counters the provider reports to. */
export interface OdmrEvents {
  atrn(user: string, outcome: AtrnOutcome): void;
  authFailure(mechanism: string): void;
  /** A recipient of `domain` was delivered to the customer. */
  delivered(domain: string): void;
  /** A drain ended with everything settled that could be (for "last success"). */
  drainFinished(user: string, delivered: number): void;
}

/** Reports nowhere. */
export const NO_EVENTS: OdmrEvents = {
  atrn() {},
  authFailure() {},
  delivered() {},
  drainFinished() {},
};
