/**
 * The provider's ODMR session before reversal (RFC 2645 §5): EHLO, STARTTLS, AUTH, ATRN,
 * QUIT. After `250` to ATRN the same Conn and reader go to the drain (drain.ts), where the
 * provider is the SMTP client. Does not deliver mail itself and never trusts an unauthenticated
 * peer: ATRN needs AUTH, and every named domain must belong to the authenticated user.
 */
import type tls from "node:tls";
import type { Conn } from "../net/conn.ts";
import { ConnClosedError, TimeoutError } from "../net/conn.ts";
import { LineReader } from "../wire/line_reader.ts";
import { formatReply, reply } from "../wire/reply.ts";
import type { Reply } from "../wire/reply.ts";
import { parseAtrnArgs } from "../wire/atrn.ts";
import type { ClaimResult, QueueStore } from "../queue/types.ts";
import type { CredentialStore } from "../auth/store.ts";
import type { AuthThrottle } from "../auth/throttle.ts";
import type { Logger } from "../observe/log.ts";
import { isIdleCommand, MAX_IDLE_COMMANDS, SessionBudget } from "../smtp/session_budget.ts";
import { MAX_SESSION_ERRORS } from "../smtp/session_budget.ts";
import { REPLIES } from "../wire/replies.ts";
import { MAX_AUTH_LINE_BYTES, runAuthExchange } from "./_auth_exchange.ts";
import type { AuthOutcome } from "./_auth_exchange.ts";
import { drainLease } from "./drain.ts";
import { wantsLineRecords } from "./line_records.ts";
import type { OdmrEvents } from "./events.ts";
import { NO_EVENTS } from "./events.ts";

/** Command line limit, CRLF included (RFC 5321 §4.5.3.1.4); AUTH lines may be longer. */
export const MAX_COMMAND_BYTES = 512;
/** Unknown or out-of-place commands tolerated before `421` (shared with the MX). */
export const MAX_ERRORS = MAX_SESSION_ERRORS;
/** Default time from connect to a successful AUTH (`odmr.auth_timeout`). */
export const DEFAULT_AUTH_TIMEOUT_MS = 60_000;
/** Failed AUTH attempts on one connection before `421` (docs/protocol.md §6.4). */
export const MAX_AUTH_FAILURES = 3;

/** What the provider session needs. */
export interface ProviderDeps {
  readonly store: QueueStore;
  readonly credentials: CredentialStore;
  /** Derives SCRAM salts for unknown user names; default: a key per process. */
  readonly fakeSaltKey?: Uint8Array;
  readonly throttle: AuthThrottle;
  readonly log: Logger;
  readonly events?: OdmrEvents;
  /** Called once AUTH succeeded (the connection's slot stops being evictable). */
  readonly onAuthenticated?: () => void;
  readonly options: ProviderOptions;
}

/** Per-listener settings. */
export interface ProviderOptions {
  readonly hostname: string;
  /** STARTTLS offered when set and the connection is not already secure. */
  readonly secureContext?: tls.SecureContext;
  /** AUTH (and so ATRN) only once TLS is up. */
  readonly requireTls: boolean;
  /**
   * Under TLS, write one line per TLS record while draining (fetchmail over implicit TLS);
   * absent: decided per session by wantsLineRecords (line_records.ts).
   */
  readonly lineRecords?: boolean;
  readonly commandTimeoutMs: number;
  /** Connect → successful AUTH, then `421 4.7.0` and close. Default 60 s. */
  readonly authTimeoutMs?: number;
  /** How long a domain stays claimed without renewal. */
  readonly leaseSeconds: number;
}

type State =
  | { readonly kind: "initial" }
  | { readonly kind: "greeted"; readonly ehlo: string }
  | { readonly kind: "authenticated"; readonly ehlo: string; readonly user: string };

/** Runs one ODMR session on `conn` to its end; never throws for peer behaviour. */
export async function runProviderSession(conn: Conn, deps: ProviderDeps): Promise<void> {
  const session = new ProviderSession(conn, deps);
  try {
    await session.run();
  } catch (err) {
    deps.log.error("session_error", { error: String(err) });
    await conn.write(formatReply(reply(421, "4.3.0", "Internal error, closing connection")))
      .catch(() => {});
  } finally {
    await conn.close();
  }
}

const decoder = new TextDecoder();

class ProviderSession {
  #conn: Conn;
  #reader: LineReader;
  #deps: ProviderDeps;
  #log: Logger;
  #state: State = { kind: "initial" };
  #budget = new SessionBudget({ maxErrors: MAX_ERRORS, maxIdleCommands: MAX_IDLE_COMMANDS });
  #authFailures = 0;
  #ended = false;
  /** What decides line_records when the listener leaves it open (line_records.ts). */
  #saidStartTls = false;
  #mechanism = "";
  /** Past `250` to ATRN: we are the SMTP client now and must not send server replies. */
  #hasReversed = false;
  /** Epoch ms by which AUTH must have succeeded (Denial of service: slots held before AUTH). */
  #authDeadline: number;

  constructor(conn: Conn, deps: ProviderDeps) {
    this.#conn = conn;
    this.#reader = new LineReader(conn);
    this.#deps = deps;
    this.#log = deps.log.with({ session: conn.id });
    this.#authDeadline = Date.now() + (deps.options.authTimeoutMs ?? DEFAULT_AUTH_TIMEOUT_MS);
  }

  /** Read deadline now: the command timeout, shortened to what is left before AUTH is due. */
  #readTimeoutMs(): number {
    const idle = this.#deps.options.commandTimeoutMs;
    if (this.#state.kind === "authenticated") return idle;
    return Math.max(1, Math.min(idle, this.#authDeadline - Date.now()));
  }

  #isAuthOverdue(): boolean {
    return this.#state.kind !== "authenticated" && Date.now() >= this.#authDeadline;
  }

  #transition(to: State): void {
    this.#log.debug("state", { from: this.#state.kind, to: to.kind });
    this.#state = to;
  }

  async #send(r: Reply): Promise<void> {
    await this.#conn.write(formatReply(r));
  }

  async run(): Promise<void> {
    const opts = this.#deps.options;
    this.#log.info("connect", { proto: "odmr", remote: this.#conn.remoteAddress });
    await this.#send(reply(220, undefined, `${opts.hostname} ESMTP on-demand mail relay ready`));
    while (!this.#ended) {
      let line;
      try {
        // RFC 4954 §4: an AUTH command line may be 12288 octets; others stay at 512 below.
        line = await this.#reader.readLine(MAX_AUTH_LINE_BYTES, this.#readTimeoutMs());
      } catch (err) {
        if (err instanceof TimeoutError) await this.#timedOut();
        return;
      }
      switch (line.kind) {
        case "eof":
          return;
        case "tooLong":
          await this.#error(reply(500, "5.5.2", "Line too long"));
          continue;
        case "bareNewline":
          await this.#send(reply(500, "5.5.2", "Bare CR or LF not allowed, closing connection"));
          return;
        case "line": {
          const text = decoder.decode(line.line);
          if (line.line.length + 2 > MAX_COMMAND_BYTES && !/^AUTH /i.test(text)) {
            await this.#error(reply(500, "5.5.2", "Line too long"));
            continue;
          }
          try {
            await this.#dispatch(text);
          } catch (err) {
            // A peer that stops answering inside AUTH or goes away: its fault, not ours.
            if (err instanceof TimeoutError && !this.#hasReversed) await this.#timedOut();
            else if (!(err instanceof TimeoutError) && !(err instanceof ConnClosedError)) throw err;
            return;
          }
        }
      }
    }
  }

  /** The read deadline passed: the AUTH deadline (4.7.0) or the idle timeout (4.4.2). */
  async #timedOut(): Promise<void> {
    const hostname = this.#deps.options.hostname;
    const r = this.#isAuthOverdue()
      ? reply(421, "4.7.0", `${hostname} Authentication timeout, closing connection`)
      : reply(421, "4.4.2", `${hostname} Timeout, closing connection`);
    this.#log.info("odmr_timeout", { state: this.#state.kind, code: r.enhanced ?? "" });
    await this.#send(r).catch(() => {});
  }

  /** Replies with an error and counts it; too many end the session. */
  async #error(r: Reply): Promise<void> {
    if (this.#budget.spendError()) {
      await this.#send(reply(421, "4.7.0", "Too many errors, closing connection"));
      this.#ended = true;
      return;
    }
    await this.#send(r);
  }

  async #dispatch(text: string): Promise<void> {
    const sp = text.indexOf(" ");
    const verb = (sp < 0 ? text : text.slice(0, sp)).toUpperCase();
    const args = sp < 0 ? "" : text.slice(sp + 1);
    if (
      isIdleCommand(verb, {
        hasSaidHello: this.#state.kind !== "initial",
        isInTransaction: false,
      }) && this.#budget.spendIdle()
    ) {
      this.#log.warn("odmr_too_many_idle_commands", { verb });
      await this.#send(REPLIES.tooManyIdleCommands);
      this.#ended = true;
      return;
    }
    switch (verb) {
      case "EHLO":
        return await this.#ehlo(args);
      case "HELO":
        return await this.#helo(args);
      case "STARTTLS":
        return await this.#startTls(args);
      case "AUTH":
        return await this.#auth(args);
      case "ATRN":
        return await this.#atrn(args);
      case "NOOP":
        return await this.#send(reply(250, "2.0.0", "OK"));
      case "RSET":
        return await this.#send(reply(250, "2.0.0", "OK"));
      case "QUIT":
        await this.#send(reply(221, "2.0.0", `${this.#deps.options.hostname} closing connection`));
        this.#ended = true;
        return;
      default:
        // RFC 2645 §5.4: before reversal only EHLO, AUTH, ATRN and QUIT need be served.
        return await this.#error(reply(502, "5.5.1", "Command not implemented on the ODMR port"));
    }
  }

  #canStartTls(): boolean {
    return this.#deps.options.secureContext !== undefined && !this.#conn.isSecure;
  }

  /** Mechanisms offered now: none until TLS when required; PLAIN/LOGIN only under TLS. */
  #mechanisms(): string[] {
    if (this.#deps.options.requireTls && !this.#conn.isSecure) return [];
    return this.#conn.isSecure
      ? ["SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"]
      : ["SCRAM-SHA-256", "CRAM-MD5"];
  }

  async #ehlo(args: string): Promise<void> {
    const name = args.trim();
    if (name === "") return await this.#error(reply(501, "5.5.4", "EHLO needs a domain"));
    const lines = [`${this.#deps.options.hostname} greets ${name}`];
    if (this.#state.kind !== "authenticated") {
      const mechs = this.#mechanisms();
      if (mechs.length > 0) lines.push(`AUTH ${mechs.join(" ")}`);
    }
    lines.push("ATRN", "ENHANCEDSTATUSCODES", "PIPELINING");
    if (this.#canStartTls()) lines.push("STARTTLS");
    // EHLO does not undo a successful AUTH (RFC 4954 §4); it only renames the client.
    if (this.#state.kind === "authenticated") {
      this.#transition({ ...this.#state, ehlo: name });
    } else {
      this.#transition({ kind: "greeted", ehlo: name });
    }
    await this.#send({ code: 250, lines });
  }

  async #helo(args: string): Promise<void> {
    const name = args.trim();
    if (name === "") return await this.#error(reply(501, "5.5.4", "HELO needs a domain"));
    if (this.#state.kind !== "authenticated") this.#transition({ kind: "greeted", ehlo: name });
    await this.#send(reply(250, undefined, `${this.#deps.options.hostname} greets ${name}`));
  }

  async #startTls(args: string): Promise<void> {
    if (args.trim() !== "") {
      return await this.#error(reply(501, "5.5.4", "Syntax error (no parameters allowed)"));
    }
    if (this.#conn.isSecure) return await this.#error(reply(503, "5.5.1", "TLS already active"));
    const ctx = this.#deps.options.secureContext;
    if (ctx === undefined) {
      return await this.#error(reply(502, "5.5.1", "STARTTLS not available"));
    }
    if (this.#state.kind === "authenticated") {
      return await this.#error(reply(503, "5.5.1", "STARTTLS not allowed after AUTH"));
    }
    await this.#send(reply(220, "2.0.0", "Ready to start TLS"));
    // CVE-2011-0411: anything pipelined after STARTTLS in plaintext is an injection attempt.
    const dropped = this.#reader.discardBuffered();
    this.#saidStartTls = true;
    let result;
    try {
      result = await this.#conn.startTlsServer({ secureContext: ctx });
    } catch (err) {
      // Garbage instead of a ClientHello, or a handshake the peer abandons: a peer fault,
      // logged below error level so that strangers cannot fill the error log.
      this.#log.info("tls_failed", { remote: this.#conn.remoteAddress, reason: String(err) });
      this.#ended = true;
      return;
    }
    const injected = dropped + result.discardedBytes;
    if (injected > 0) this.#log.warn("starttls_injection_dropped", { bytes: injected });
    this.#log.info("tls", { remote: this.#conn.remoteAddress });
    this.#transition({ kind: "initial" });
  }

  async #auth(args: string): Promise<void> {
    const state = this.#state;
    if (state.kind === "authenticated") {
      return await this.#error(reply(503, "5.5.1", "Already authenticated"));
    }
    if (state.kind === "initial") {
      return await this.#error(reply(503, "5.5.1", "Send EHLO first"));
    }
    if (this.#deps.options.requireTls && !this.#conn.isSecure) {
      return await this.#error(reply(530, "5.7.0", "Must issue a STARTTLS command first"));
    }
    const outcome: AuthOutcome = await runAuthExchange({
      args,
      conn: this.#conn,
      reader: this.#reader,
      offered: this.#mechanisms(),
      credentials: this.#deps.credentials,
      ...(this.#deps.fakeSaltKey ? { fakeSaltKey: this.#deps.fakeSaltKey } : {}),
      hostname: this.#deps.options.hostname,
      timeoutMs: this.#readTimeoutMs(),
    });
    switch (outcome.kind) {
      case "reply":
        // Syntax problems, cancel, mechanism not offered: no credential was tried.
        return await this.#error(outcome.reply);
      case "eof":
        this.#ended = true;
        return;
      case "success":
      case "failure":
        return await this.#settleAuth(outcome, state.ehlo);
      default: {
        const never: never = outcome;
        throw new Error(`unreachable ${String(never)}`);
      }
    }
  }

  /**
   * Answers a checked AUTH (issue 10 item 5): the throttle's delay holds the reply whatever
   * the outcome, so a correct password from a busy address is late, never refused; a cap
   * turns the reply into `454 4.7.0` that reveals nothing.
   */
  async #settleAuth(
    outcome: Extract<AuthOutcome, { kind: "success" | "failure" }>,
    ehlo: string,
  ): Promise<void> {
    const ip = this.#conn.remoteAddress;
    const throttle = this.#deps.throttle;
    const isSuccess = outcome.kind === "success";
    // A failure counts before the verdict, so its own reply is already held (1 s, 2 s, …).
    if (!isSuccess) throttle.recordFailure(ip, outcome.user);
    const verdict = throttle.judge({ ip, user: outcome.user, isSuccess });
    if (verdict.delayMs > 0) await new Promise((r) => setTimeout(r, verdict.delayMs));
    if (outcome.kind === "success" && !verdict.isRefused) {
      throttle.recordSuccess(ip, outcome.user);
      this.#budget.progress();
      this.#deps.onAuthenticated?.();
      this.#log.info("auth", { user: outcome.user, mechanism: outcome.mechanism });
      this.#mechanism = outcome.mechanism;
      this.#transition({ kind: "authenticated", ehlo, user: outcome.user });
      return await this.#send(reply(235, "2.7.0", "Authentication successful"));
    }
    this.#authFailures++;
    const fields = { remote: ip, user: outcome.user, mechanism: outcome.mechanism };
    if (isSuccess) {
      // The right password while a cap holds, from an address new to this account.
      this.#log.warn("auth_throttled", fields);
    } else {
      this.#deps.events?.authFailure(outcome.mechanism);
      this.#log.warn("auth_failed", { ...fields, ...(verdict.isRefused ? { capped: true } : {}) });
    }
    if (this.#authFailures >= MAX_AUTH_FAILURES) {
      await this.#send(reply(421, "4.7.0", "Too many authentication failures"));
      this.#ended = true;
      return;
    }
    await this.#send(
      verdict.isRefused
        ? reply(454, "4.7.0", "Temporary authentication failure, try again later")
        : reply(535, "5.7.8", "Authentication credentials invalid"),
    );
  }

  async #atrn(args: string): Promise<void> {
    const state = this.#state;
    if (state.kind !== "authenticated") {
      this.#deps.events?.atrn("", "530");
      return await this.#error(reply(530, "5.7.0", "Authentication required"));
    }
    const parsed = parseAtrnArgs(args);
    if (!parsed.ok) return await this.#error(reply(501, "5.5.4", "Invalid domain list"));
    const owned = this.#deps.credentials.domainsOf(state.user);
    const domains = parsed.domains.length > 0 ? parsed.domains : owned;
    const notOwned = domains.filter((d) => !owned.includes(d));
    if (domains.length === 0 || notOwned.length > 0) {
      // RFC 2645 §5.2.1: all or nothing; the refusal names no domain.
      this.#log.warn("atrn_refused", { user: state.user, domains: notOwned.join(",") });
      this.#deps.events?.atrn(state.user, "450");
      return await this.#send(reply(450, "4.7.1", "ATRN request refused"));
    }
    let claim: ClaimResult;
    try {
      claim = await this.#deps.store.claim(domains, {
        owner: `${this.#conn.id}@${Deno.pid}`,
        leaseSeconds: this.#deps.options.leaseSeconds,
      });
    } catch (err) {
      // The queue cannot answer (database down or busy): temporary, the customer retries.
      this.#log.error("atrn_claim_failed", { user: state.user, error: String(err) });
      this.#deps.events?.atrn(state.user, "451");
      return await this.#send(reply(451, "4.3.0", "Unable to process ATRN request now"));
    }
    if (claim.kind === "busy") {
      this.#log.info("atrn_busy", { user: state.user, domain: claim.domain });
      this.#deps.events?.atrn(state.user, "451");
      return await this.#send(reply(451, "4.3.0", "Unable to process ATRN request now"));
    }
    if (claim.kind === "empty") {
      this.#deps.events?.atrn(state.user, "453");
      return await this.#send(reply(453, "4.2.0", "You have no mail"));
    }
    this.#deps.events?.atrn(state.user, "250");
    this.#log.info("atrn", { user: state.user, domains: domains.join(",") });
    const lease = claim.lease;
    const lineRecords = wantsLineRecords(this.#deps.options.lineRecords, {
      isSecure: this.#conn.isSecure,
      saidStartTls: this.#saidStartTls,
      mechanism: this.#mechanism,
    });
    this.#log.debug("line_records", { on: lineRecords });
    this.#hasReversed = true;
    try {
      // Nothing may be pipelined across the reversal: the 250 is flushed before we act as client.
      await this.#conn.write(
        formatReply(reply(250, "2.0.0", "OK now reversing the connection")),
        { flush: true },
      );
      await drainLease({
        conn: this.#conn,
        reader: this.#reader,
        lease,
        user: state.user,
        log: this.#log,
        events: this.#deps.events ?? NO_EVENTS,
        options: { ...this.#deps.options, lineRecords },
      });
    } finally {
      this.#ended = true;
      // Unreleased, the lease still ends by itself at its expiry: the domains are not lost.
      await lease.release().catch((err: unknown) => {
        this.#log.error("lease_release_failed", { user: state.user, error: String(err) });
      });
    }
  }
}
