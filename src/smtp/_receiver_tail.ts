/**
 * The tail of a refused transaction: the commands a pipelining client sent behind a MAIL or a
 * BDAT chunk before their refusal came back (RFC 2920 §3.1): its RCPTs, its DATA or further
 * BDAT chunks, and the RSET after it. They fail for want of a transaction (`503`), which the
 * client could not foresee, so the refusal already paid for them: they are no mistakes, and
 * that RSET is no idle command. Without this one refused transaction cost 2-3 mistakes (RCPT and
 * DATA behind a refused MAIL), one per chunk of a body refused whole (a body over 256 KiB to an
 * unknown local user ended a provider's drain with 421), and an idle command for the RSET.
 * Bounded elsewhere: each RCPT and tail BDAT is an attempt at a message (session_budget.ts),
 * and DATA or any other command ends the tail.
 */

/** What a command is to the tail. */
export type TailPart = "member" | "reset" | undefined;

/** Whether the commands now arriving are the tail of a refused transaction. */
export class RefusedTail {
  #open = false;

  /**
   * What the command `verb` ("" for a line that is none) is to the tail; the tail goes on only
   * through RCPT and BDAT (more of them may follow).
   */
  take(verb: string): TailPart {
    if (!this.#open) return undefined;
    this.#open = verb === "RCPT" || verb === "BDAT";
    if (verb === "RSET") return "reset";
    return this.#open || verb === "DATA" ? "member" : undefined;
  }

  /** A MAIL or a BDAT chunk was refused and left no transaction: its tail may follow. */
  open(): void {
    this.#open = true;
  }
}
