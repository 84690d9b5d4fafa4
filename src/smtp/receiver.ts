/**
 * SmtpReceiver: the SMTP server role on a Conn it may not have accepted (inbound MX, or the
 * customer after ATRN). Owns the protocol; the sink owns policy and storage. Never throws for
 * peer behaviour; does not close the Conn (the caller does, after `run()` resolves).
 * Over 450 lines because it is the session's state machine: the verb table, the loop and the
 * handlers that still change its private state (HELO, RSET, STARTTLS, AUTH). Moving those out
 * behind a context that returns {reply, next state} is the open part of issue 12 item 3.
 */
import type { Conn } from "../net/conn.ts";
import { ConnClosedError, TimeoutError } from "../net/conn.ts";
import type { LineReader } from "../wire/line_reader.ts";
import type { Logger } from "../observe/log.ts";
import type { MessageSink, SessionInfo } from "./sink.ts";
import type { Reply } from "../wire/reply.ts";
import { formatReply, formatReplyText } from "../wire/reply.ts";
import { parseCommandLine } from "../wire/command.ts";
import {
  defaultGreetingText,
  ehloReply,
  greetingReply,
  heloReply,
  REPLIES,
} from "../wire/replies.ts";
import { checkHelo, checkStartTls, ehloKeywords } from "./_receiver_checks.ts";
import type { CheckContext, SessionState, StateKind } from "./_receiver_checks.ts";
import { handleBdat, handleData, handleMail, handleRcpt } from "./_receiver_mail.ts";
import type { ReceiverCore } from "./_receiver_mail.ts";
import type {
  AuthResult,
  EndReason,
  ReceiverAuth,
  ReceiverOptions,
  ReceiverOutcome,
  Step,
} from "./_receiver_types.ts";
import { isIdleCommand, SessionBudget } from "./session_budget.ts";

export type { AuthResult, EndReason, ReceiverAuth, ReceiverOptions, ReceiverOutcome, Step };
export { dataDeadlineMs, MIN_DATA_DEADLINE_MS } from "./_receiver_mail.ts";

type Verb =
  | "EHLO"
  | "HELO"
  | "MAIL"
  | "RCPT"
  | "DATA"
  | "BDAT"
  | "RSET"
  | "NOOP"
  | "QUIT"
  | "VRFY"
  | "HELP"
  | "STARTTLS"
  | "AUTH";

interface CommandSpec {
  readonly states: readonly StateKind[];
  /** Reply when the verb comes in another state. */
  readonly outOfState: Reply;
  /** Group-ending command (RFC 2920 §3.1): replies are flushed after it. */
  readonly flush: boolean;
  readonly run: (rx: SmtpReceiver, args: string) => Promise<Step>;
}

const ALL: readonly StateKind[] = ["greeted", "ready", "inTransaction"];
const GREETED: readonly StateKind[] = ["ready", "inTransaction"];

function toVerb(word: string): Verb | undefined {
  switch (word) {
    case "EHLO":
    case "HELO":
    case "MAIL":
    case "RCPT":
    case "DATA":
    case "BDAT":
    case "RSET":
    case "NOOP":
    case "QUIT":
    case "VRFY":
    case "HELP":
    case "STARTTLS":
    case "AUTH":
      return word;
    default:
      return undefined;
  }
}

const DEFAULT_MAX_LINE_BYTES = 512;
const FINAL_WRITE_TIMEOUT_MS = 5_000;

/** The SMTP server role. */
export class SmtpReceiver implements ReceiverCore {
  readonly conn: Conn;
  readonly reader: LineReader;
  readonly sink: MessageSink;
  readonly log: Logger;
  readonly options: ReceiverOptions;
  #state: SessionState = { kind: "greeted" };
  #pending: Reply[] = [];
  #budget: SessionBudget;
  #messagesAccepted = 0;
  /** Set by a successful AUTH; cleared by STARTTLS (RFC 3207 §4.2). */
  #authenticatedUser: string | undefined;

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
    this.options = args.options;
    this.#budget = new SessionBudget({
      maxErrors: args.options.maxErrors,
      ...(args.options.maxIdleCommands === undefined
        ? {}
        : { maxIdleCommands: args.options.maxIdleCommands }),
    });
  }

  static readonly #COMMANDS: { readonly [V in Verb]: CommandSpec } = {
    EHLO: {
      states: ALL,
      outOfState: REPLIES.badSequence,
      flush: true,
      run: (rx, a) => rx.#helo(a, true),
    },
    HELO: {
      states: ALL,
      outOfState: REPLIES.badSequence,
      flush: true,
      run: (rx, a) => rx.#helo(a, false),
    },
    MAIL: {
      states: ["ready"],
      outOfState: REPLIES.nestedMail,
      flush: false,
      run: (rx, a) => handleMail(rx, a),
    },
    RCPT: {
      states: ["inTransaction"],
      outOfState: REPLIES.mailFirst,
      flush: false,
      run: (rx, a) => handleRcpt(rx, a),
    },
    DATA: {
      states: ["inTransaction"],
      outOfState: REPLIES.mailFirst,
      flush: true,
      run: (rx, a) => handleData(rx, a),
    },
    // BDAT decides its state itself: its octets must be consumed in every state (RFC 3030 §3).
    BDAT: {
      states: ALL,
      outOfState: REPLIES.badSequence,
      flush: false,
      run: (rx, a) => handleBdat(rx, a),
    },
    RSET: { states: ALL, outOfState: REPLIES.badSequence, flush: false, run: (rx) => rx.#rset() },
    NOOP: {
      states: ALL,
      outOfState: REPLIES.badSequence,
      flush: true,
      run: (rx) => rx.#say(REPLIES.ok),
    },
    QUIT: { states: ALL, outOfState: REPLIES.badSequence, flush: true, run: (rx) => rx.#quit() },
    VRFY: {
      states: ALL,
      outOfState: REPLIES.badSequence,
      flush: true,
      run: (rx) => rx.#say(REPLIES.vrfy),
    },
    HELP: {
      states: ALL,
      outOfState: REPLIES.badSequence,
      flush: false,
      run: (rx) => rx.#say(REPLIES.help),
    },
    STARTTLS: {
      states: ["greeted", "ready"],
      outOfState: REPLIES.badSequence,
      flush: true,
      run: (rx, a) => rx.#startTls(a),
    },
    // Decides its state itself: without an auth hook (the MX) AUTH is unknown in every state.
    AUTH: {
      states: ALL,
      outOfState: REPLIES.badSequence,
      flush: true,
      run: (rx, a) => rx.#auth(a),
    },
  };

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
      this.queueReply(
        greetingReply(this.options.greeting ?? defaultGreetingText(this.options.hostname)),
      );
      await this.flush();
      reason = await this.#loop();
    } catch (err) {
      reason = await this.#failed(err);
    } finally {
      await this.dropTransaction("session ended");
    }
    this.log.info("smtp_session_end", { reason, messages: this.#messagesAccepted });
    return { reason, messagesAccepted: this.#messagesAccepted };
  }

  async #loop(): Promise<EndReason> {
    for (;;) {
      const step = await this.#command();
      if (step !== undefined) {
        await this.flush();
        return step.end;
      }
    }
  }

  async #failed(err: unknown): Promise<EndReason> {
    if (err instanceof TimeoutError) {
      this.log.info("smtp_timeout", { state: this.#state.kind });
      await this.#finalReply(REPLIES.idleTimeout);
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
    this.queueReply(r);
    try {
      await this.flush(FINAL_WRITE_TIMEOUT_MS);
    } catch {
      // The peer is gone; nothing more to say.
    }
  }

  /** Reads and runs one command. */
  async #command(): Promise<Step> {
    const res = await this.reader.readLine(
      this.options.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES,
      this.options.commandTimeoutMs,
    );
    let step: Step;
    let mustFlush = false;
    switch (res.kind) {
      case "eof":
        return { end: "eof" };
      case "bareNewline":
        // Smuggling defence (docs/protocol.md §6.5): framing cannot be trusted any more.
        this.log.warn("smtp_bare_newline", { where: "command" });
        this.queueReply(REPLIES.bareNewlineCommand);
        return { end: "bareNewline" };
      case "tooLong":
        step = this.protocolError(REPLIES.lineTooLong);
        break;
      case "line": {
        const parsed = parseCommandLine(res.line, { allowUtf8: this.#allowsUtf8() });
        if (!parsed.ok) {
          step = this.protocolError(
            parsed.fault === "empty" ? REPLIES.unknownCommand : REPLIES.badCharacters,
          );
          break;
        }
        const verb = toVerb(parsed.verb);
        if (verb === undefined) {
          this.log.debug("smtp_unknown_command", { verb: parsed.verb.slice(0, 16) });
          step = this.protocolError(REPLIES.unknownCommand);
          break;
        }
        const spec = SmtpReceiver.#COMMANDS[verb];
        mustFlush = spec.flush;
        if (!spec.states.includes(this.#state.kind)) {
          const r = this.#state.kind === "greeted" && GREETED.some((k) => spec.states.includes(k))
            ? REPLIES.heloFirst
            : spec.outOfState;
          step = this.protocolError(r);
          break;
        }
        const idle = {
          hasSaidHello: this.#state.kind !== "greeted",
          isInTransaction: this.#state.kind === "inTransaction",
        };
        if (isIdleCommand(verb, idle) && this.#budget.spendIdle()) {
          this.log.warn("smtp_too_many_idle_commands", { verb });
          this.queueReply(REPLIES.tooManyIdleCommands);
          return { end: "tooManyErrors" };
        }
        step = await spec.run(this, parsed.args);
        break;
      }
      default: {
        const never: never = res;
        throw new Error(`unhandled line result ${JSON.stringify(never)}`);
      }
    }
    if (step === undefined && (mustFlush || this.reader.bufferedBytes === 0)) await this.flush();
    return step;
  }

  /** UTF-8 command lines are accepted once SMTPUTF8 was offered, i.e. after EHLO. */
  #allowsUtf8(): boolean {
    return this.#state.kind !== "greeted" && this.#state.helo.isExtended;
  }

  /** Queues a reply the peer caused by a mistake; past `maxErrors`, ends the session. */
  protocolError(r: Reply): Step {
    this.queueReply(r);
    if (this.#budget.spendError()) {
      this.log.warn("smtp_too_many_errors", { errors: this.#budget.errors });
      this.queueReply(REPLIES.tooManyErrors);
      return { end: "tooManyErrors" };
    }
    return undefined;
  }

  /** Queues a reply (PIPELINING: sent in order at the next flush). */
  queueReply(r: Reply): void {
    this.log.debug("smtp_reply", { reply: formatReplyText(r).trimEnd() });
    this.#pending.push(r);
  }

  /** Writes every queued reply in one write. */
  async flush(timeoutMs?: number): Promise<void> {
    if (this.#pending.length === 0) return;
    const parts = this.#pending.map(formatReply);
    this.#pending = [];
    const total = parts.reduce((n, p) => n + p.length, 0);
    const out = new Uint8Array(total);
    let at = 0;
    for (const p of parts) {
      out.set(p, at);
      at += p.length;
    }
    await this.conn.write(
      out,
      timeoutMs === undefined ? { flush: true } : { flush: true, timeoutMs },
    );
  }

  /** The one place where the state changes; logs `from → to`. */
  transition(next: SessionState, why: string): void {
    this.log.debug("smtp_state", { from: this.#state.kind, to: next.kind, why });
    this.#state = next;
  }

  /** Counts an accepted message. */
  messageAccepted(): void {
    this.#messagesAccepted++;
    this.#budget.progress();
  }

  /** Aborts the sink transaction, if any, and returns to `ready` (or stays `greeted`). */
  async dropTransaction(why: string): Promise<void> {
    const s = this.#state;
    if (s.kind !== "inTransaction") return;
    this.transition({ kind: "ready", helo: s.helo }, why);
    try {
      await s.tx.sink.abort();
    } catch (err) {
      this.log.error("sink_abort_failed", { id: s.tx.sink.id, error: String(err) });
    }
  }

  #say(r: Reply): Promise<Step> {
    this.queueReply(r);
    return Promise.resolve(undefined);
  }

  async #helo(args: string, isExtended: boolean): Promise<Step> {
    const checked = checkHelo(args, isExtended);
    if (!checked.ok) return this.protocolError(checked.reply);
    // EHLO/HELO in a transaction resets it (RFC 5321 §4.1.4).
    await this.dropTransaction(isExtended ? "EHLO" : "HELO");
    this.transition({ kind: "ready", helo: checked.value }, isExtended ? "EHLO" : "HELO");
    const keywords = ehloKeywords({
      maxMessageBytes: this.options.maxMessageBytes,
      canStartTls: this.options.tls !== undefined && !this.conn.isSecure,
      offersPrdr: this.options.offersPrdr === true,
      ...(this.options.auth !== undefined && this.#authenticatedUser === undefined
        ? { authMechanisms: this.options.auth.mechanisms(this.conn.isSecure) }
        : {}),
    });
    this.queueReply(
      isExtended ? ehloReply(this.options.hostname, keywords) : heloReply(this.options.hostname),
    );
    return undefined;
  }

  async #rset(): Promise<Step> {
    await this.dropTransaction("RSET");
    this.queueReply(REPLIES.resetOk);
    return undefined;
  }

  #quit(): Promise<Step> {
    this.queueReply(REPLIES.bye);
    return Promise.resolve({ end: "quit" });
  }

  async #startTls(args: string): Promise<Step> {
    const refusal = checkStartTls(args, {
      isOffered: this.options.tls !== undefined,
      isSecure: this.conn.isSecure,
      hasGreeted: this.#state.kind !== "greeted",
    });
    const tlsOptions = this.options.tls;
    if (refusal !== undefined || tlsOptions === undefined) {
      return this.protocolError(refusal ?? REPLIES.notImplemented);
    }
    this.queueReply(REPLIES.startTls);
    await this.flush();
    // RFC 3207 §4.2 / CVE-2011-0411: plaintext pipelined after STARTTLS is an injection.
    const fromReader = this.reader.discardBuffered();
    let discarded = fromReader;
    try {
      const upgrade = await this.conn.startTlsServer({ secureContext: tlsOptions.secureContext });
      discarded += upgrade.discardedBytes;
    } catch (err) {
      this.log.info("smtp_tls_failed", { error: String(err) });
      return { end: "tlsFailed" };
    }
    if (discarded > 0) {
      this.log.warn("smtp_starttls_injection", { discardedBytes: discarded });
    }
    // Forget everything learned before TLS (RFC 3207 §4.2): a fresh EHLO is expected.
    this.#authenticatedUser = undefined;
    this.transition({ kind: "greeted" }, "STARTTLS");
    return undefined;
  }

  async #auth(args: string): Promise<Step> {
    const auth = this.options.auth;
    // Without a hook (the MX) AUTH does not exist here.
    if (auth === undefined) return this.protocolError(REPLIES.unknownCommand);
    if (this.#state.kind === "greeted") return this.protocolError(REPLIES.heloFirst);
    // RFC 4954 §4: AUTH is not permitted during a mail transaction.
    if (this.#state.kind === "inTransaction") return this.protocolError(REPLIES.badSequence);
    if (this.#authenticatedUser !== undefined) {
      return this.protocolError(REPLIES.alreadyAuthenticated);
    }
    const offered = auth.mechanisms(this.conn.isSecure);
    const result = await auth.authenticate(args, { conn: this.conn, reader: this.reader, offered });
    switch (result.kind) {
      case "success":
        this.#authenticatedUser = result.user;
        this.#budget.progress();
        this.queueReply(result.reply);
        return undefined;
      case "refused":
        if (result.isProtocolError) return this.protocolError(result.reply);
        this.queueReply(result.reply);
        return undefined;
      case "end":
        if (result.reply !== undefined) this.queueReply(result.reply);
        return { end: "tooManyErrors" };
      default: {
        const never: never = result;
        throw new Error(`unhandled auth result ${JSON.stringify(never)}`);
      }
    }
  }
}
