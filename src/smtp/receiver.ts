/**
 * SmtpReceiver: the SMTP server role on a Conn it may not have accepted (inbound MX, or the
 * customer after ATRN). Owns the protocol; the sink owns policy and storage. Never throws for
 * peer behaviour; does not close the Conn (the caller does, after `run()` resolves).
 * A typed command table (verb → allowed states → handler: _receiver_commands.ts); handlers
 * (_receiver_hello.ts, _receiver_mail.ts, _receiver_body.ts, _receiver_starttls.ts,
 * _receiver_auth.ts) return an Outcome and only the loop here applies it: the state, the
 * replies, the budgets (_receiver_costs.ts).
 */
import type { Conn } from "../net/conn.ts";
import { ConnClosedError, TimeoutError } from "../net/conn_types.ts";
import type { LineReader, LineResult } from "../wire/line_reader.ts";
import type { Logger } from "../observe/log.ts";
import type { MessageSink, SessionInfo, SinkTransaction } from "./sink.ts";
import type { Reply } from "../wire/reply.ts";
import { formatReplyText, isPositive } from "../wire/reply.ts";
import { parseCommandLine } from "../wire/command.ts";
import { defaultGreetingText, greetingReply, REPLIES } from "../wire/replies.ts";
import type { CheckContext, SessionState } from "./_receiver_checks.ts";
import { outOfStateReply, SPECS, type Verb } from "./_receiver_commands.ts";
import { leaveTransaction } from "./_receiver_outcome.ts";
import type {
  AuthResult,
  EndReason,
  Next,
  Outcome,
  ReceiverAuth,
  ReceiverContext,
  ReceiverOptions,
  ReceiverOutcome,
  Step,
} from "./_receiver_types.ts";
import { LaterReply } from "./_receiver_later.ts";
import { type FlushOptions, ReplyQueue } from "./_reply_queue.ts";
import { CommandCosts } from "./_receiver_costs.ts";
import type { TailPart } from "./_receiver_tail.ts";

export type { AuthResult, EndReason, ReceiverAuth, ReceiverOptions, ReceiverOutcome, Step };
export { dataDeadlineMs, MIN_DATA_DEADLINE_MS } from "./_receiver_body.ts";
export { MAX_HELD_REPLIES, MAX_HOLD_MS } from "./_reply_queue.ts";

const DEFAULT_MAX_LINE_BYTES = 512;
const FINAL_WRITE_TIMEOUT_MS = 5_000;
const END_OF_STREAM: Step = { end: "eof" };

/** The SMTP server role. */
export class SmtpReceiver implements ReceiverContext {
  readonly conn: Conn;
  readonly reader: LineReader;
  readonly sink: MessageSink;
  readonly log: Logger;
  readonly options: ReceiverOptions;
  #state: SessionState = { kind: "greeted" };
  /** Replies not sent yet (_reply_queue.ts). */
  readonly #replies: ReplyQueue;
  /** Whether the replies of the command just run end a pipelined group (RFC 2920 §3.1). */
  #mustFlush = false;
  /** Errors, idle commands, attempts, and a refused transaction's tail (_receiver_costs.ts). */
  readonly #costs: CommandCosts;
  /** The verb of the command running now ("" for a line that is none). */
  #verb: Verb | "" = "";
  #messagesAccepted = 0;
  /** Set by a successful AUTH; cleared by STARTTLS (RFC 3207 §4.2). */
  #authenticatedUser: string | undefined;
  /** Whether debug lines are written: each reply's is formatted only then. */
  readonly #isDebug: boolean;

  constructor(args: {
    conn: Conn;
    reader: LineReader;
    sink: MessageSink;
    log: Logger;
    options: ReceiverOptions;
  }) {
    this.conn = args.conn;
    this.reader = args.reader;
    this.sink = args.sink;
    this.log = args.log.with({ session: args.conn.id });
    this.#isDebug = this.log.isEnabled?.("debug") ?? true;
    this.options = args.options;
    this.#replies = new ReplyQueue(args.conn);
    this.#costs = new CommandCosts(args.options, this.log, (r) => this.#queue(r));
  }

  /** The user AUTH proved, if any. */
  get authenticatedUser(): string | undefined {
    return this.#authenticatedUser;
  }

  get state(): SessionState {
    return this.#state;
  }

  get checkContext(): CheckContext {
    return {
      maxMessageBytes: this.options.maxMessageBytes,
      maxRecipients: this.options.maxRecipients,
      messagesAccepted: this.#messagesAccepted,
      maxMessagesPerSession: this.options.maxMessagesPerSession,
      offersPrdr: this.options.offersPrdr === true,
    };
  }

  get sessionInfo(): SessionInfo {
    const helo = this.#state.kind === "greeted" ? undefined : this.#state.helo;
    const user = this.#authenticatedUser;
    // RFC 3848: the Received "with" keyword says whether TLS and AUTH were used.
    let protocol: SessionInfo["protocol"] = "SMTP";
    if (helo?.isExtended === true) {
      protocol = this.conn.isSecure
        ? (user === undefined ? "ESMTPS" : "ESMTPSA")
        : (user === undefined ? "ESMTP" : "ESMTPA");
    }
    return {
      sessionId: this.conn.id,
      remoteAddress: this.conn.remoteAddress,
      heloName: helo?.name ?? "",
      isSecure: this.conn.isSecure,
      protocol,
      ...(user !== undefined ? { authenticatedUser: user } : {}),
    };
  }

  /** Runs the session to its end; resolves with why it ended. */
  async run(): Promise<ReceiverOutcome> {
    let reason: EndReason;
    try {
      this.#queue(
        greetingReply(this.options.greeting ?? defaultGreetingText(this.options.hostname)),
      );
      await this.#flush();
      reason = await this.#loop();
    } catch (err) {
      reason = await this.#failed(err);
    } finally {
      this.#replies.stop();
      const left = leaveTransaction(this.#state, "session ended").next;
      if (left !== undefined) await this.#enter(left, false);
      this.sink.afterReplies?.();
    }
    // A session the client ended (QUIT, or closing) is debug: each accepted message has its
    // own info line already, and an MX of one message per connection paid a second line for
    // it. Every other end (timeout, errors, loss, smuggling) says why at info.
    const fields = { reason, messages: this.#messagesAccepted };
    if (reason === "quit" || reason === "eof") this.log.debug("smtp_session_end", fields);
    else this.log.info("smtp_session_end", fields);
    return { reason, messagesAccepted: this.#messagesAccepted };
  }

  /**
   * Reads and runs commands to the session's end. One async frame for the session: a command
   * runs synchronously unless its handler is async (an async frame per command cost an MX ~3 KB
   * of garbage per message).
   */
  async #loop(): Promise<EndReason> {
    const maxLineBytes = this.options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
    for (;;) {
      const res = await this.reader.readLine(
        maxLineBytes,
        this.#commandTimeoutMs(),
        this.#replies.count > 0 ? this.#flushHeld : undefined,
      );
      // A QUIT still runs: a client that sent it and closed is done, not gone mid-message.
      if (this.options.stopAtInputEnd === true && this.conn.inputEnded === true && !isQuit(res)) {
        this.log.info("smtp_client_gone", { state: this.#state.kind });
        return "lost";
      }
      const ran = this.#command(res);
      if (ran instanceof Promise) this.#replies.writeKnownSoon();
      const step = ran instanceof Promise ? await ran : ran;
      if (step !== undefined) {
        await this.#flush();
        this.sink.afterReplies?.();
        return step.end;
      }
      // RFC 2920 §3.2: replies wait while more input is here, also when it is still in the Conn
      // (and while only part of the next line is: `#flushHeld` then, before the read waits).
      if (
        this.#replies.count > 0 &&
        (this.#mustFlush || this.reader.unreadBytes === 0 || this.#replies.isFull())
      ) {
        await this.#flush();
        this.sink.afterReplies?.();
      }
    }
  }

  /** `smtp.timeout`, or what is left of the AUTH deadline before AUTH (ReceiverAuth.deadline). */
  #commandTimeoutMs(): number {
    const idle = this.options.commandTimeoutMs;
    const deadline = this.options.auth?.deadline;
    if (deadline === undefined || this.#authenticatedUser !== undefined) return idle;
    return Math.max(1, Math.min(idle, deadline - Date.now()));
  }

  /** Whether AUTH is still missing past its deadline (a timeout then is the deadline's). */
  #isAuthOverdue(): boolean {
    const deadline = this.options.auth?.deadline;
    return deadline !== undefined && this.#authenticatedUser === undefined &&
      Date.now() >= deadline;
  }

  async #failed(err: unknown): Promise<EndReason> {
    if (err instanceof TimeoutError) {
      const isAuthOverdue = this.#isAuthOverdue();
      this.log.info("smtp_timeout", {
        state: this.#state.kind,
        ...(isAuthOverdue ? { code: "4.7.0" } : {}),
      });
      await this.#finalReply(isAuthOverdue ? REPLIES.authTimeout : REPLIES.idleTimeout);
      return "timeout";
    }
    if (err instanceof ConnClosedError) {
      this.log.info("smtp_connection_lost", { reason: err.message });
      return "lost";
    }
    this.log.error("smtp_session_failed", { error: String(err) });
    await this.#finalReply(REPLIES.internalError);
    return "error";
  }

  /** Best effort: queued replies then one last reply, with a short deadline. */
  async #finalReply(r: Reply): Promise<void> {
    this.#queue(r);
    try {
      await this.#flush({ untilSent: true, timeoutMs: FINAL_WRITE_TIMEOUT_MS });
    } catch {
      // The peer is gone; nothing more to say.
    }
  }

  /** Runs one command line; sets #mustFlush (whether its replies end a pipelined group). */
  #command(res: LineResult): Step | Promise<Step> {
    this.#mustFlush = false;
    switch (res.kind) {
      case "eof":
        return END_OF_STREAM;
      case "bareNewline":
        // Smuggling defence (docs/protocol.md §6.5): framing cannot be trusted any more.
        this.log.warn("smtp_bare_newline", { where: "command" });
        this.#queue(REPLIES.bareNewlineCommand);
        return { end: "bareNewline" };
      case "tooLong":
        this.#begin("");
        return this.#protocolError(REPLIES.lineTooLong);
      case "line":
        return this.#run(res.line);
      default: {
        const never: never = res;
        throw new Error(`unhandled line result ${JSON.stringify(never)}`);
      }
    }
  }

  /** A command line's verb through the table: state, idle budget, then its handler. */
  #run(line: Uint8Array): Step | Promise<Step> {
    const parsed = parseCommandLine(line, { allowUtf8: this.#allowsUtf8() });
    if (!parsed.ok) {
      this.#begin("");
      return this.#protocolError(
        parsed.fault === "empty" ? REPLIES.emptyCommand : REPLIES.badCharacters,
      );
    }
    const spec = SPECS.get(parsed.verb);
    const verb = spec === undefined ? "" : parsed.verb as Verb;
    const tailPart = this.#begin(verb);
    if (spec === undefined) {
      this.log.debug("smtp_unknown_command", { verb: parsed.verb.slice(0, 16) });
      return this.#protocolError(REPLIES.unknownCommand);
    }
    this.#mustFlush = spec.flush;
    if (!spec.states.includes(this.#state.kind)) {
      return this.#protocolError(outOfStateReply(spec, this.#state.kind));
    }
    const ended = this.#costs.spendBefore(verb, this.#state, tailPart);
    if (ended !== undefined) return ended;
    const outcome = spec.run(this, parsed.args);
    return outcome instanceof Promise ? outcome.then(this.#ran) : this.#ran(outcome);
  }

  /** A command starts: its verb ("" for none), and what it is to a refused transaction's tail. */
  #begin(verb: Verb | ""): TailPart {
    this.#verb = verb;
    return this.#costs.begin(verb);
  }

  /** Applies a handler's Outcome; it may say otherwise than its verb whether to flush. */
  readonly #ran = (outcome: Outcome): Step | Promise<Step> => {
    if (outcome.flush !== undefined) this.#mustFlush = outcome.flush;
    return this.#apply(outcome);
  };

  /** Applies a handler's Outcome: state, user, replies, error budget, end (the caller flushes). */
  #apply(o: Outcome): Step | Promise<Step> {
    // Synchronous unless a transaction is aborted: no async frame for every command.
    const entered = o.next === undefined
      ? undefined
      : this.#enter(o.next, o.accepted === true && o.later === undefined);
    return entered === undefined ? this.#applyRest(o) : entered.then(() => this.#applyRest(o));
  }

  #applyRest(o: Outcome): Step {
    if (o.user !== undefined) {
      this.#authenticatedUser = o.user ?? undefined;
      if (o.user !== null) this.#costs.progress();
    }
    for (const r of o.replies) this.#queue(r);
    if (o.later !== undefined) this.#queueLater(o.later);
    const step: Step = o.end !== undefined ? { end: o.end } : undefined;
    if (step === undefined && this.#leftRefused(o)) this.#costs.openTail();
    if (o.isError === true && step === undefined) return this.#costs.spendError();
    if (o.isIdle === true && step === undefined) return this.#costs.spendIdle("DATA/BDAT");
    return step;
  }

  /**
   * The one place where the state changes (logged `from → to` when the kind changes). Leaving
   * a transaction counts the message when `accepted`, and otherwise aborts it in the sink (the
   * only case that returns a promise).
   */
  #enter(next: Next, accepted: boolean): Promise<void> | undefined {
    const from = this.#state;
    if (this.#isDebug && from.kind !== next.state.kind) {
      this.log.debug("smtp_state", { from: from.kind, to: next.state.kind, why: next.why });
    }
    this.#state = next.state;
    if (from.kind !== "inTransaction") return;
    if (next.state.kind === "inTransaction" && next.state.tx.sink === from.tx.sink) return;
    if (accepted) {
      this.#messagesAccepted++;
      this.#costs.progress();
      return;
    }
    return this.#abort(from.tx.sink);
  }

  async #abort(sink: SinkTransaction): Promise<void> {
    try {
      await sink.abort();
    } catch (err) {
      this.log.error("sink_abort_failed", { id: sink.id, error: String(err) });
    }
  }

  /** UTF-8 command lines are accepted once SMTPUTF8 was offered, i.e. after EHLO. */
  #allowsUtf8(): boolean {
    return this.#state.kind !== "greeted" && this.#state.helo.isExtended;
  }

  /**
   * Whether the command just applied refused its transaction before the end (a MAIL that
   * opened none, a BDAT chunk after which none is open and no message was taken): what the
   * client pipelined behind it is its tail.
   */
  #leftRefused(o: Outcome): boolean {
    if (this.#verb === "MAIL") return o.next === undefined;
    if (this.#verb !== "BDAT") return false;
    return o.accepted !== true && this.#state.kind !== "inTransaction";
  }

  /** Queues a reply the peer caused by a mistake; past `maxErrors`, ends the session. */
  #protocolError(r: Reply): Step {
    this.#queue(r);
    return this.#costs.spendError();
  }

  /** Queues a reply (PIPELINING: sent in order at the next flush). */
  #queue(r: Reply): void {
    if (this.#isDebug) this.log.debug("smtp_reply", { reply: formatReplyText(r).trimEnd() });
    this.#replies.hold(r);
  }

  /** Queues a final reply still to come; the message counts once it came back positive. */
  #queueLater(later: Promise<Reply>): void {
    this.#replies.holdLater(
      new LaterReply(later, (r) => {
        if (this.#isDebug) this.log.debug("smtp_reply", { reply: formatReplyText(r).trimEnd() });
        if (isPositive(r)) {
          this.#messagesAccepted++;
          this.#costs.progress();
        }
      }),
    );
  }

  async sendNow(r: Reply, opts: { readonly untilSent?: boolean } = {}): Promise<void> {
    this.#queue(r);
    await this.#flush(opts.untilSent === true ? { untilSent: true } : {});
  }

  flushReplies(): Promise<void> {
    return this.#flush();
  }

  /** Writes the held replies known now (ReceiverContext.sendHeld; _reply_queue.ts `writeKnown`). */
  readonly sendHeld = (): Promise<void> | undefined => {
    const sent = this.#replies.writeKnown();
    return sent?.then(this.#afterReplies);
  };

  readonly #afterReplies = (): void => this.sink.afterReplies?.();

  /**
   * Replies still held when the next line must be waited for go out first (RFC 2920 §3.2): held
   * until a trickled line ended, a committed message's 250 waited up to `smtp.timeout`.
   */
  readonly #flushHeld = (): Promise<void> => this.#flush().then(this.#afterReplies);

  /** Writes every queued reply (_reply_queue.ts). */
  #flush(opts: FlushOptions = {}): Promise<void> {
    return this.#replies.flush(opts);
  }
}

/** A `QUIT` command line (any case, no arguments). */
function isQuit(res: LineResult): boolean {
  if (res.kind !== "line" || res.line.length !== 4) return false;
  const [q, u, i, t] = res.line;
  return (q! | 0x20) === 0x71 && (u! | 0x20) === 0x75 && (i! | 0x20) === 0x69 &&
    (t! | 0x20) === 0x74;
}
