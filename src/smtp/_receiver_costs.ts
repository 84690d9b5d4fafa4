/**
 * What each command costs an SMTP server session (receiver.ts): the session's budget
 * (session_budget.ts), with a refused transaction's tail waived (_receiver_tail.ts), and the
 * `421` and log line when a count is spent. It queues that reply; the receiver ends the session.
 */
import type { Logger } from "../observe/log.ts";
import type { Reply } from "../wire/reply.ts";
import { REPLIES } from "../wire/replies.ts";
import type { SessionState } from "./_receiver_checks.ts";
import type { Verb } from "./_receiver_commands.ts";
import { RefusedTail, type TailPart } from "./_receiver_tail.ts";
import type { ReceiverOptions, Step } from "./_receiver_types.ts";
import { isIdleCommand, SessionBudget } from "./session_budget.ts";

/** One session's budget for errors, idle commands and attempts, and its refused tail. */
export class CommandCosts {
  readonly #budget: SessionBudget;
  /** The commands behind a refused transaction (_receiver_tail.ts). */
  readonly #tail = new RefusedTail();
  /** The command running now is in a refused transaction's tail: its mistake is waived. */
  #isTailMember = false;
  readonly #log: Logger;
  readonly #queue: (r: Reply) => void;

  constructor(options: ReceiverOptions, log: Logger, queue: (r: Reply) => void) {
    const { maxIdleCommands, maxAttempts } = options;
    this.#budget = new SessionBudget({
      maxErrors: options.maxErrors,
      ...(maxIdleCommands === undefined ? {} : { maxIdleCommands }),
      ...(maxAttempts === undefined ? {} : { maxAttempts }),
    });
    this.#log = log;
    this.#queue = queue;
  }

  /** Whether the command running now is in a refused transaction's tail. */
  get isTailMember(): boolean {
    return this.#isTailMember;
  }

  /** A command starts: what it ("" for a line that is none) is to a refused transaction's tail. */
  begin(verb: Verb | ""): TailPart {
    const part = this.#tail.take(verb);
    this.#isTailMember = part === "member";
    return part;
  }

  /** A MAIL or a BDAT chunk was refused and left no transaction: its tail may follow. */
  openTail(): void {
    this.#tail.open();
  }

  /**
   * What a known verb allowed in `state` costs before its handler runs: an idle command, or an
   * attempt at a message (MAIL, RCPT, a BDAT chunk in a refused tail); `421` and the end past one.
   */
  spendBefore(verb: Verb | "", state: SessionState, tailPart: TailPart): Step {
    const idle = {
      hasSaidHello: state.kind !== "greeted",
      isInTransaction: state.kind === "inTransaction",
    };
    if (isIdleCommand(verb, idle)) {
      // The RSET after a refused transaction resets it: no idle command.
      return tailPart === "reset" ? undefined : this.spendIdle(verb);
    }
    if (verb === "MAIL" || verb === "RCPT" || (this.#isTailMember && verb === "BDAT")) {
      return this.#spendAttempt(verb);
    }
    return undefined;
  }

  /** The session moved forward (a message accepted, AUTH succeeded): the counts restart. */
  progress(): void {
    this.#budget.progress();
  }

  /**
   * Counts a mistake (its reply is queued); past `maxErrors`, `421` and the end. A command in a
   * refused transaction's tail costs nothing: the refusal paid for it.
   */
  spendError(): Step {
    if (this.#isTailMember) return undefined;
    if (!this.#budget.spendError()) return undefined;
    this.#log.warn("smtp_too_many_errors", { errors: this.#budget.errors });
    this.#queue(REPLIES.tooManyErrors);
    return { end: "tooManyErrors" };
  }

  /** Counts a command without progress; past `maxIdleCommands`, `421` and the end. */
  spendIdle(verb: string): Step {
    if (!this.#budget.spendIdle()) return undefined;
    this.#log.warn("smtp_too_many_idle_commands", { verb });
    this.#queue(REPLIES.tooManyIdleCommands);
    return { end: "tooManyErrors" };
  }

  /** Counts an attempt at a message (MAIL, RCPT); past `maxAttempts`, `421` and the end. */
  #spendAttempt(verb: string): Step {
    if (!this.#budget.spendAttempt(verb === "RCPT")) return undefined;
    this.#log.warn("smtp_too_many_attempts", { verb });
    this.#queue(verb === "RCPT" ? REPLIES.tooManyRecipientAttempts : REPLIES.tooManyAttempts);
    return { end: "tooManyErrors" };
  }
}
