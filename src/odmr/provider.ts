/**
 * The provider's ODMR session before reversal (RFC 2645 §5): EHLO, STARTTLS, AUTH, ATRN,
 * QUIT, on one typed command table with the states each verb is allowed in (like the MX
 * receiver). After `250` to ATRN the same Conn and reader go to the drain (drain.ts), where the
 * provider is the SMTP client. Port 366 is the pre-authentication attack surface: nothing but
 * EHLO/STARTTLS/AUTH works before AUTH, and errors and idle commands spend the budget shared
 * with the MX (src/smtp/session_budget.ts).
 */
import type { Conn } from "../net/conn.ts";
import { ConnClosedError, TimeoutError } from "../net/conn.ts";
import { LineReader } from "../wire/line_reader.ts";
import { formatReply } from "../wire/reply.ts";
import type { Reply } from "../wire/reply.ts";
import type { Logger } from "../observe/log.ts";
import { isIdleCommand, MAX_IDLE_COMMANDS, SessionBudget } from "../smtp/session_budget.ts";
import { MAX_SESSION_ERRORS } from "../smtp/session_budget.ts";
import { MAX_AUTH_LINE_BYTES } from "../smtp/auth_exchange.ts";
import { handleAuth, offeredMechanisms } from "./_provider_auth.ts";
import { handleAtrn } from "./_provider_atrn.ts";
import {
  ODMR_REPLIES,
  odmrAuthTimeout,
  odmrBye,
  odmrEhloReply,
  odmrGreeting,
  odmrHeloReply,
  odmrIdleTimeout,
} from "./_provider_replies.ts";
import { END } from "./_provider_types.ts";
import type {
  ProviderContext,
  ProviderDeps,
  ProviderOptions,
  ProviderState,
  ProviderStateKind,
  ProviderStep,
} from "./_provider_types.ts";

export type { ProviderDeps, ProviderOptions };
export { MAX_AUTH_FAILURES } from "./_provider_auth.ts";

/** Command line limit, CRLF included (RFC 5321 §4.5.3.1.4); AUTH lines may be longer. */
export const MAX_COMMAND_BYTES = 512;
/** Unknown or out-of-place commands tolerated before `421` (shared with the MX). */
export const MAX_ERRORS = MAX_SESSION_ERRORS;
/** Default time from connect to a successful AUTH (`odmr.auth_timeout`). */
export const DEFAULT_AUTH_TIMEOUT_MS = 60_000;

type Verb = "EHLO" | "HELO" | "STARTTLS" | "AUTH" | "ATRN" | "NOOP" | "RSET" | "QUIT";

interface CommandSpec {
  readonly states: readonly ProviderStateKind[];
  /** The reply when the verb comes in another state. */
  readonly outOfState: (ctx: ProviderContext) => Reply;
  readonly run: (ctx: ProviderContext, args: string) => Promise<ProviderStep>;
}

/** Every state before the reversal. */
const BEFORE_REVERSAL: readonly ProviderStateKind[] = ["initial", "greeted", "authenticated"];
const badSequence = () => ODMR_REPLIES.heloFirst;

// RFC 2645 §5.4: before reversal only EHLO, AUTH, ATRN and QUIT need be served.
const COMMANDS: { readonly [V in Verb]: CommandSpec } = {
  EHLO: { states: BEFORE_REVERSAL, outOfState: badSequence, run: (c, a) => hello(c, a, true) },
  HELO: { states: BEFORE_REVERSAL, outOfState: badSequence, run: (c, a) => hello(c, a, false) },
  STARTTLS: {
    states: ["greeted"],
    outOfState: (c) =>
      c.state.kind === "initial" ? ODMR_REPLIES.heloFirst : ODMR_REPLIES.startTlsAfterAuth,
    run: startTls,
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
  NOOP: { states: BEFORE_REVERSAL, outOfState: badSequence, run: (c) => say(c, ODMR_REPLIES.ok) },
  RSET: { states: BEFORE_REVERSAL, outOfState: badSequence, run: (c) => say(c, ODMR_REPLIES.ok) },
  QUIT: {
    states: BEFORE_REVERSAL,
    outOfState: badSequence,
    run: async (c) => {
      await c.send(odmrBye(c.deps.options.hostname));
      return END;
    },
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

class ProviderSession implements ProviderContext {
  readonly conn: Conn;
  readonly reader: LineReader;
  readonly deps: ProviderDeps;
  readonly log: Logger;
  #state: ProviderState = { kind: "initial" };
  #budget = new SessionBudget({ maxErrors: MAX_ERRORS, maxIdleCommands: MAX_IDLE_COMMANDS });
  #authFailures = 0;
  #saidStartTls = false;
  /** Epoch ms by which AUTH must have succeeded (strangers holding slots before AUTH). */
  readonly #authDeadline: number;

  constructor(conn: Conn, deps: ProviderDeps) {
    this.conn = conn;
    this.reader = new LineReader(conn);
    this.deps = deps;
    this.log = deps.log.with({ session: conn.id });
    this.#authDeadline = Date.now() + (deps.options.authTimeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS);
  }

  get state(): ProviderState {
    return this.#state;
  }

  get saidStartTls(): boolean {
    return this.#saidStartTls;
  }

  transition(to: ProviderState, why: string): void {
    this.log.debug("state", { from: this.#state.kind, to: to.kind, why });
    this.#state = to;
  }

  async send(r: Reply): Promise<void> {
    await this.conn.write(formatReply(r));
  }

  async error(r: Reply): Promise<ProviderStep> {
    if (this.#budget.spendError()) {
      this.log.warn("odmr_too_many_errors", { errors: this.#budget.errors });
      await this.send(ODMR_REPLIES.tooManyErrors);
      return END;
    }
    await this.send(r);
    return undefined;
  }

  readTimeoutMs(): number {
    const idle = this.deps.options.commandTimeoutMs;
    if (this.#state.kind === "authenticated") return idle;
    return Math.max(1, Math.min(idle, this.#authDeadline - Date.now()));
  }

  countAuthFailure(): number {
    return ++this.#authFailures;
  }

  authenticated(): void {
    this.#budget.progress();
    this.deps.onAuthenticated?.();
  }

  markStartTls(): void {
    this.#saidStartTls = true;
  }

  async run(): Promise<void> {
    this.log.info("connect", { proto: "odmr", remote: this.conn.remoteAddress });
    await this.send(odmrGreeting(this.deps.options.hostname));
    for (;;) {
      let step: ProviderStep;
      try {
        step = await this.#command();
      } catch (err) {
        // A peer that stops answering (also inside AUTH) or goes away: its fault, not ours.
        if (err instanceof TimeoutError && this.#state.kind !== "reversed") await this.#timedOut();
        else if (!(err instanceof TimeoutError) && !(err instanceof ConnClosedError)) throw err;
        return;
      }
      if (step !== undefined) return;
    }
  }

  /** Reads and runs one command. */
  async #command(): Promise<ProviderStep> {
    // RFC 4954 §4: an AUTH command line may be 12288 octets; others stay at 512 below.
    const line = await this.reader.readLine(MAX_AUTH_LINE_BYTES, this.readTimeoutMs());
    switch (line.kind) {
      case "eof":
        return END;
      case "tooLong":
        return await this.error(ODMR_REPLIES.lineTooLong);
      case "bareNewline":
        // Smuggling defence: framing cannot be trusted any more.
        await this.send(ODMR_REPLIES.bareNewline);
        return END;
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
      return await this.error(ODMR_REPLIES.lineTooLong);
    }
    const verb = toVerb(word);
    if (verb === undefined) return await this.error(ODMR_REPLIES.notImplemented);
    const spec = COMMANDS[verb];
    if (!spec.states.includes(this.#state.kind)) return await this.error(spec.outOfState(this));
    const idle = { hasSaidHello: this.#state.kind !== "initial", isInTransaction: false };
    if (isIdleCommand(verb, idle) && this.#budget.spendIdle()) {
      this.log.warn("odmr_too_many_idle_commands", { verb });
      await this.send(ODMR_REPLIES.tooManyIdleCommands);
      return END;
    }
    return await spec.run(this, args);
  }

  /** The read deadline passed: the AUTH deadline (4.7.0) or the idle timeout (4.4.2). */
  async #timedOut(): Promise<void> {
    const hostname = this.deps.options.hostname;
    const isAuthOverdue = this.#state.kind !== "authenticated" &&
      Date.now() >= this.#authDeadline;
    const r = isAuthOverdue ? odmrAuthTimeout(hostname) : odmrIdleTimeout(hostname);
    this.log.info("odmr_timeout", { state: this.#state.kind, code: r.enhanced ?? "" });
    await this.send(r).catch(() => {});
  }
}

async function say(ctx: ProviderContext, r: Reply): Promise<ProviderStep> {
  await ctx.send(r);
  return undefined;
}

/** EHLO/HELO. EHLO does not undo a successful AUTH (RFC 4954 §4); it only renames the client. */
async function hello(
  ctx: ProviderContext,
  args: string,
  isExtended: boolean,
): Promise<ProviderStep> {
  const name = args.trim();
  const hostname = ctx.deps.options.hostname;
  if (name === "") {
    return await ctx.error(isExtended ? ODMR_REPLIES.ehloSyntax : ODMR_REPLIES.heloSyntax);
  }
  const state = ctx.state;
  const why = isExtended ? "EHLO" : "HELO";
  if (state.kind === "authenticated") ctx.transition({ ...state, ehlo: name }, why);
  else ctx.transition({ kind: "greeted", ehlo: name }, why);
  if (!isExtended) return await say(ctx, odmrHeloReply(hostname, name));
  const keywords: string[] = [];
  if (state.kind !== "authenticated") {
    const mechanisms = offeredMechanisms(ctx);
    if (mechanisms.length > 0) keywords.push(`AUTH ${mechanisms.join(" ")}`);
  }
  keywords.push("ATRN", "ENHANCEDSTATUSCODES", "PIPELINING");
  if (ctx.deps.options.secureContext !== undefined && !ctx.conn.isSecure) keywords.push("STARTTLS");
  return await say(ctx, odmrEhloReply(hostname, name, keywords));
}

/** STARTTLS in the greeted state (RFC 3207). */
async function startTls(ctx: ProviderContext, args: string): Promise<ProviderStep> {
  if (args.trim() !== "") return await ctx.error(ODMR_REPLIES.noParameters);
  if (ctx.conn.isSecure) return await ctx.error(ODMR_REPLIES.alreadySecure);
  const secureContext = ctx.deps.options.secureContext;
  if (secureContext === undefined) return await ctx.error(ODMR_REPLIES.startTlsUnavailable);
  await ctx.send(ODMR_REPLIES.startTls);
  // CVE-2011-0411: anything pipelined after STARTTLS in plaintext is an injection attempt.
  const dropped = ctx.reader.discardBuffered();
  ctx.markStartTls();
  let result;
  try {
    // A client certificate is asked for, never required: AUTH EXTERNAL (RFC 4422 appendix A).
    result = await ctx.conn.startTlsServer({ secureContext, requestCert: true });
  } catch (err) {
    // Garbage instead of a ClientHello, or a handshake the peer abandons: a peer fault,
    // logged below error level so that strangers cannot fill the error log.
    ctx.log.info("tls_failed", { remote: ctx.conn.remoteAddress, reason: String(err) });
    return END;
  }
  const injected = dropped + result.discardedBytes;
  if (injected > 0) ctx.log.warn("starttls_injection_dropped", { bytes: injected });
  ctx.log.info("tls", { remote: ctx.conn.remoteAddress });
  // Forget everything learned before TLS (RFC 3207 §4.2): a fresh EHLO is expected.
  ctx.transition({ kind: "initial" }, "STARTTLS");
  return undefined;
}
