/**
 * What one SMTP server session tolerates before `421 4.7.0` and close, shared by the MX
 * receiver and the ODMR port: protocol errors, commands that make no progress (NOOP, HELP,
 * VRFY, RSET with nothing to reset, repeated EHLO/HELO), and attempts at a message that never
 * came (MAIL, RCPT). Without the last two a peer that sends NOOP, or MAIL and RSET,
 * just before every idle timeout keeps its connection slot forever. Pure bookkeeping, no I/O.
 */

/** Protocol errors tolerated; the next one is answered, then `421 4.7.0`. */
export const MAX_SESSION_ERRORS = 10;
/** Commands without progress tolerated between two progress points; the next gets `421`. */
export const MAX_IDLE_COMMANDS = 10;
/**
 * Attempts at a message tolerated between two progress points, beyond one transaction's
 * recipients (`maxAttemptsFor`): each `MAIL` and each `RCPT` counts, and the next one gets `421`
 * instead of its reply. `RSET` inside a transaction is no idle command (it aborts one), so
 * without this count `MAIL`/`RSET`, or `RCPT`s, each just before the idle timeout, held a
 * connection slot forever. Like Postfix's smtpd_junk_command_limit (100), far above what a real
 * client needs: one accepted message restarts the count.
 */
export const MAX_ATTEMPTS_WITHOUT_MESSAGE = 100;

/**
 * RCPTs one may send beyond `maxAttempts` between accepted messages, counted apart from MAIL.
 * A relay's sender puts several domains into one transaction; when one of them is refused
 * (unknown users, a domain over quota) its RCPTs are answered 5xx/4xx and the message still
 * goes to the others. Counted with MAIL in one budget, a transaction of 60 accepted and 150
 * refused recipients got `421` before DATA, on every retry. Postfix allows 1000 refused
 * recipients (smtpd_recipient_overshoot_limit). RCPTs past `max_recipients` (`452 4.5.3`)
 * count here only, not as errors: the client sends them in a later transaction.
 */
export const MAX_REFUSED_RECIPIENTS = 1000;

/** MAIL and RCPT commands allowed between accepted messages: a full transaction always fits. */
export function maxAttemptsFor(maxRecipients: number): number {
  return MAX_ATTEMPTS_WITHOUT_MESSAGE + maxRecipients;
}

/** Limits of one session's budget. */
export interface SessionBudgetLimits {
  readonly maxErrors: number;
  /** Undefined: no limit (a role whose peer we trust to make progress). */
  readonly maxIdleCommands?: number;
  /** Undefined: no limit (as `maxIdleCommands`). */
  readonly maxAttempts?: number;
}

/** Counts errors and idle commands for one session. */
export class SessionBudget {
  readonly #limits: SessionBudgetLimits;
  #errors = 0;
  #idle = 0;
  #attempts = 0;
  #recipients = 0;

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

  /**
   * Counts one attempt at a message; true when the budget is spent. A `MAIL` (or a chunk of a
   * refused transaction) counts against `maxAttempts`; a `RCPT` against its own count, which
   * allows MAX_REFUSED_RECIPIENTS more.
   */
  spendAttempt(isRecipient = false): boolean {
    const max = this.#limits.maxAttempts;
    if (max === undefined) return false;
    if (isRecipient) return ++this.#recipients > max + MAX_REFUSED_RECIPIENTS;
    return ++this.#attempts > max;
  }

  /** The session moved forward (a message accepted, AUTH succeeded): both counts restart. */
  progress(): void {
    this.#idle = 0;
    this.#attempts = 0;
    this.#recipients = 0;
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
