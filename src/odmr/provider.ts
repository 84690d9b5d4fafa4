/**
 * The provider's ODMR session before reversal (RFC 2645 §5): EHLO, STARTTLS, AUTH, ATRN,
 * QUIT, in the receiver's shape (src/smtp/receiver.ts): one typed command table with the
 * states each verb is allowed in, handlers (_provider_hello.ts, _provider_starttls.ts,
 * _provider_auth.ts, _provider_atrn.ts) that return a ProviderOutcome, and one loop here that
 * applies it. After `250` to ATRN the same Conn and reader go to the drain (drain.ts), where
 * the provider is the SMTP client. Port 366 is the pre-authentication attack surface: nothing
 * but EHLO/STARTTLS/AUTH works before AUTH, and errors and idle commands spend the budget
 * shared with the MX (src/smtp/session_budget.ts).
 */
import type { Conn } from "../net/conn.ts";
import { ConnClosedError, TimeoutError } from "../net/conn_types.ts";
import { LineReader } from "../wire/line_reader.ts";
import { formatReply, formatReplyText } from "../wire/reply.ts";
import type { Reply } from "../wire/reply.ts";
import type { Logger } from "../observe/log.ts";
import { isIdleCommand, MAX_IDLE_COMMANDS, SessionBudget } from "../smtp/session_budget.ts";
import { MAX_SESSION_ERRORS } from "../smtp/session_budget.ts";
import { MAX_AUTH_LINE_BYTES } from "../smtp/auth_exchange.ts";
import { handleAuth, MAX_AUTH_FAILURES } from "./_provider_auth.ts";
import { handleAtrn } from "./_provider_atrn.ts";
import { handleHello } from "./_provider_hello.ts";
import { handleStartTls } from "./_provider_starttls.ts";
import { endWith, mistake, say } from "./_provider_outcome.ts";
import {
  ODMR_REPLIES,
  odmrAuthTimeout,
  odmrBye,
  odmrGreeting,
  odmrIdleTimeout,
} from "./_provider_replies.ts";
import type {
  ProviderContext,
  ProviderDeps,
  ProviderNext,
  ProviderOptions,
  ProviderOutcome,
  ProviderState,
  ProviderStateKind,
} from "./_provider_types.ts";

export type { ProviderDeps, ProviderOptions };
export { MAX_AUTH_FAILURES };

/** Command line limit, CRLF included (RFC 5321 §4.5.3.1.4); AUTH lines may be longer. */
export const MAX_COMMAND_BYTES = 512;
/** Unknown or out-of-place commands tolerated before `421` (shared with the MX). */
export const MAX_ERRORS = MAX_SESSION_ERRORS;
/** Default time from connect (again from STARTTLS) to a successful AUTH (`odmr.auth_timeout`). */
export const DEFAULT_AUTH_TIMEOUT_MS = 60_000;

type Verb = "EHLO" | "HELO" | "STARTTLS" | "AUTH" | "ATRN" | "NOOP" | "RSET" | "QUIT";

interface CommandSpec {
  readonly states: readonly ProviderStateKind[];
  /** The reply when the verb comes in another state. */
  readonly outOfState: (ctx: ProviderContext) => Reply;
  readonly run: (ctx: ProviderContext, args: string) => ProviderOutcome | Promise<ProviderOutcome>;
}

/** Every state before the reversal. */
const BEFORE_REVERSAL: readonly ProviderStateKind[] = ["initial", "greeted", "authenticated"];
const badSequence = () => ODMR_REPLIES.heloFirst;

// RFC 2645 §5.4: before reversal only EHLO, AUTH, ATRN and QUIT need be served.
const COMMANDS: { readonly [V in Verb]: CommandSpec } = {
  EHLO: {
    states: BEFORE_REVERSAL,
    outOfState: badSequence,
    run: (c, a) => handleHello(c, a, true),
  },
  HELO: {
    states: BEFORE_REVERSAL,
    outOfState: badSequence,
    run: (c, a) => handleHello(c, a, false),
  },
  STARTTLS: {
    states: ["greeted"],
    outOfState: (c) =>
      c.state.kind === "initial" ? ODMR_REPLIES.heloFirst : ODMR_REPLIES.startTlsAfterAuth,
    run: handleStartTls,
  },
  AUTH: {
    states: ["greeted"],
    outOfState: (c) =>
      c.state.kind === "initial" ? ODMR_REPLIES.heloFirst : ODMR_REPLIES.alreadyAuthenticated,
    run: handleAuth,
  },
  ATRN: {
    states: ["authenticated"],
    outOfState: (c) => {
      c.deps.events?.atrn("", "530");
      return ODMR_REPLIES.authRequired;
    },
    run: handleAtrn,
  },
  NOOP: { states: BEFORE_REVERSAL, outOfState: badSequence, run: () => say(ODMR_REPLIES.ok) },
  RSET: { states: BEFORE_REVERSAL, outOfState: badSequence, run: () => say(ODMR_REPLIES.ok) },
  QUIT: {
    states: BEFORE_REVERSAL,
    outOfState: badSequence,
    run: (c) => endWith(odmrBye(c.deps.options.hostname)),
  },
};

function toVerb(word: string): Verb | undefined {
  switch (word) {
    case "EHLO":
    case "HELO":
    case "STARTTLS":
    case "AUTH":
    case "ATRN":
    case "NOOP":
    case "RSET":
    case "QUIT":
      return word;
    default:
      return undefined;
  }
}

/** Runs one ODMR session on `conn` to its end; never throws for peer behaviour. */
export async function runProviderSession(conn: Conn, deps: ProviderDeps): Promise<void> {
  const session = new ProviderSession(conn, deps);
  try {
    await session.run();
  } catch (err) {
    deps.log.error("session_error", { error: String(err) });
    await conn.write(formatReply(ODMR_REPLIES.internalError)).catch(() => {});
  } finally {
    await conn.close();
  }
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * The session: reads a command, runs its handler, applies the ProviderOutcome. The one place
 * where the state, the error and idle budgets and the AUTH failure count change.
 */
class ProviderSession implements ProviderContext {
  readonly conn: Conn;
  readonly reader: LineReader;
  readonly deps: ProviderDeps;
  readonly log: Logger;
  #state: ProviderState = { kind: "initial" };
  #budget = new SessionBudget({ maxErrors: MAX_ERRORS, maxIdleCommands: MAX_IDLE_COMMANDS });
  #authFailures = 0;
  #saidStartTls = false;
  /**
   * Epoch ms by which AUTH must have succeeded (strangers holding slots before AUTH); set at
   * connect and again after a successful STARTTLS (#startAuthDeadline).
   */
  #authDeadline = 0;
  readonly #now: () => number;

  constructor(conn: Conn, deps: ProviderDeps) {
    this.conn = conn;
    this.reader = new LineReader(conn);
    this.deps = deps;
    this.log = deps.log.with({ session: conn.id });
    this.#now = deps.now ?? Date.now;
    this.#startAuthDeadline();
  }

  /**
   * The session starts over under TLS (RFC 3207 §4.2), and so does the AUTH deadline, as on
   * submission and on the implicit-TLS port, whose session begins after its handshake: the
   * client gets the whole `odmr.auth_timeout` to authenticate under TLS. STARTTLS is taken once
   * per session, so a stranger holds a slot for at most twice the deadline plus the handshake's
   * own bound.
   */
  #startAuthDeadline(): void {
    this.#authDeadline = this.#now() + (this.deps.options.authTimeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS);
  }

  get state(): ProviderState {
    return this.#state;
  }

  get saidStartTls(): boolean {
    return this.#saidStartTls;
  }

  readTimeoutMs(): number {
    const idle = this.deps.options.commandTimeoutMs;
    if (this.#state.kind === "authenticated") return idle;
    return Math.max(1, Math.min(idle, this.#authDeadline - this.#now()));
  }

  async sendNow(r: Reply): Promise<void> {
    await this.#send([r]);
  }

  async run(): Promise<void> {
    this.log.info("connect", { proto: "odmr", remote: this.conn.remoteAddress });
    await this.#send([odmrGreeting(this.deps.options.hostname)]);
    for (;;) {
      let isEnd: boolean;
      try {
        isEnd = await this.#command();
      } catch (err) {
        // A peer that stops answering (also inside AUTH) or goes away: its fault, not ours.
        if (err instanceof TimeoutError && this.#state.kind !== "reversed") await this.#timedOut();
        else if (!(err instanceof TimeoutError) && !(err instanceof ConnClosedError)) throw err;
        return;
      }
      if (isEnd) return;
    }
  }

  /** Reads and runs one command; true when the session is over. */
  async #command(): Promise<boolean> {
    // RFC 4954 §4: an AUTH command line may be 12288 octets; others stay at 512 below.
    const line = await this.reader.readLine(MAX_AUTH_LINE_BYTES, this.readTimeoutMs());
    switch (line.kind) {
      case "eof":
        return true;
      case "tooLong":
        return await this.#apply(mistake(ODMR_REPLIES.lineTooLong));
      case "bareNewline":
        // Smuggling defence: framing cannot be trusted any more.
        return await this.#apply(endWith(ODMR_REPLIES.bareNewline));
      case "line":
        break;
      default: {
        const never: never = line;
        throw new Error(`unhandled line result ${JSON.stringify(never)}`);
      }
    }
    const text = decoder.decode(line.line);
    const sp = text.indexOf(" ");
    const word = (sp < 0 ? text : text.slice(0, sp)).toUpperCase();
    const args = sp < 0 ? "" : text.slice(sp + 1);
    if (line.line.length + 2 > MAX_COMMAND_BYTES && word !== "AUTH") {
      return await this.#apply(mistake(ODMR_REPLIES.lineTooLong));
    }
    const verb = toVerb(word);
    if (verb === undefined) {
      // Nothing but spaces is no command at all: a syntax error, as on the MX port.
      const fault = text.trim() === "" ? ODMR_REPLIES.emptyCommand : ODMR_REPLIES.notImplemented;
      return await this.#apply(mistake(fault));
    }
    const spec = COMMANDS[verb];
    if (!spec.states.includes(this.#state.kind)) {
      return await this.#apply(mistake(spec.outOfState(this)));
    }
    const idle = { hasSaidHello: this.#state.kind !== "initial", isInTransaction: false };
    // An ATRN that does not reverse the session (453, 450, 451) moves nothing forward either:
    // counted before it runs, so that ATRN polled in one session cannot hold it forever (the one
    // that reverses it ends the session anyway).
    if ((verb === "ATRN" || isIdleCommand(verb, idle)) && this.#budget.spendIdle()) {
      this.log.warn("odmr_too_many_idle_commands", { verb });
      return await this.#apply(endWith(ODMR_REPLIES.tooManyIdleCommands));
    }
    return await this.#apply(await spec.run(this, args));
  }

  /**
   * Applies a handler's outcome: state, AUTH bookkeeping, the AUTH failure limit and the error
   * budget (past either, `421` instead of the replies, and the end), replies, reversal. True
   * when the session is over.
   */
  async #apply(o: ProviderOutcome): Promise<boolean> {
    if (o.next !== undefined) this.#enter(o.next);
    if (o.isAuthenticated === true) {
      this.#budget.progress();
      this.deps.onAuthenticated?.();
    }
    if (o.saidStartTls === true) {
      this.#saidStartTls = true;
      this.#startAuthDeadline();
    }
    if (o.isAuthFailure === true && ++this.#authFailures >= MAX_AUTH_FAILURES) {
      await this.#send([ODMR_REPLIES.tooManyAuthFailures]);
      return true;
    }
    if (o.isError === true && this.#budget.spendError()) {
      this.log.warn("odmr_too_many_errors", { errors: this.#budget.errors });
      await this.#send([ODMR_REPLIES.tooManyErrors]);
      return true;
    }
    const reversal = o.reversal;
    if (reversal === undefined) {
      await this.#send(o.replies);
      return o.end === true;
    }
    try {
      // Nothing may be pipelined across the reversal: the 250 is flushed before we act as client.
      await this.#send(o.replies, true);
      await reversal.run();
    } finally {
      await reversal.release();
    }
    return true;
  }

  /** The one place where the state changes; logs `from → to`. */
  #enter(next: ProviderNext): void {
    this.log.debug("state", { from: this.#state.kind, to: next.state.kind, why: next.why });
    this.#state = next.state;
  }

  /** Writes `replies` in one write (nothing when there are none). */
  async #send(replies: readonly Reply[], flush = false): Promise<void> {
    if (replies.length === 0) return;
    const bytes = encoder.encode(replies.map((r) => formatReplyText(r)).join(""));
    await this.conn.write(bytes, flush ? { flush: true } : {});
  }

  /** The read deadline passed: the AUTH deadline (4.7.0) or the idle timeout (4.4.2). */
  async #timedOut(): Promise<void> {
    const hostname = this.deps.options.hostname;
    const isAuthOverdue = this.#state.kind !== "authenticated" &&
      this.#now() >= this.#authDeadline;
    const r = isAuthOverdue ? odmrAuthTimeout(hostname) : odmrIdleTimeout(hostname);
    this.log.info("odmr_timeout", { state: this.#state.kind, code: r.enhanced ?? "" });
    await this.#send([r]).catch(() => {});
  }
}
