/**
 * What one SMTP server session tolerates before `421 4.7.0` and close, shared by the MX
 * receiver and the ODMR port: protocol errors, and commands that make no progress (NOOP, HELP,
 * VRFY, RSET with nothing to reset, repeated EHLO/HELO). Without the second count a peer that sends NOOP just
 * before every idle timeout keeps its connection slot forever. Pure bookkeeping, no I/O.
 */

/** Protocol errors tolerated; the next one is answered, then `421 4.7.0`. */
export const MAX_SESSION_ERRORS = 10;
/** Commands without progress tolerated between two progress points; the next gets `421`. */
export const MAX_IDLE_COMMANDS = 10;

/** Limits of one session's budget. */
export interface SessionBudgetLimits {
  readonly maxErrors: number;
  /** Undefined: no limit (a role whose peer we trust to make progress). */
  readonly maxIdleCommands?: number;
}

/** Counts errors and idle commands for one session. */
export class SessionBudget {
  readonly #limits: SessionBudgetLimits;
  #errors = 0;
  #idle = 0;

  constructor(limits: SessionBudgetLimits) {
    this.#limits = limits;
  }

  /** Errors counted so far. */
  get errors(): number {
    return this.#errors;
  }

  /** Counts one protocol error; true when the budget is spent (end the session). */
  spendError(): boolean {
    this.#errors++;
    return this.#errors > this.#limits.maxErrors;
  }

  /** Counts one command that made no progress; true when the budget is spent. */
  spendIdle(): boolean {
    const max = this.#limits.maxIdleCommands;
    if (max === undefined) return false;
    this.#idle++;
    return this.#idle > max;
  }

  /** The session moved forward (a message accepted, AUTH succeeded): idle count restarts. */
  progress(): void {
    this.#idle = 0;
  }
}

/** Where the session is, as far as idleness goes. */
export interface IdleContext {
  /** EHLO/HELO was already accepted (since the connection or STARTTLS began). */
  readonly hasSaidHello: boolean;
  /** A mail transaction is open: RSET then aborts it, which is a step of its own. */
  readonly isInTransaction: boolean;
}

/**
 * True for a command that moves nothing forward: NOOP, HELP, VRFY, RSET outside a
 * transaction, and EHLO/HELO once the client has already said hello (the first one, and the
 * one after STARTTLS, are needed).
 */
export function isIdleCommand(verb: string, ctx: IdleContext): boolean {
  switch (verb) {
    case "NOOP":
    case "HELP":
    case "VRFY":
      return true;
    case "RSET":
      return !ctx.isInTransaction;
    case "EHLO":
    case "HELO":
      return ctx.hasSaidHello;
    default:
      return false;
  }
}
