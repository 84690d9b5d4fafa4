/**
 * AUTH on the submission port: the same users, verifiers, throttle and log lines as the ODMR
 * port. PLAIN and LOGIN are offered only under TLS (their secret travels as is). Three failed
 * exchanges in one session end it with `421 4.7.0`.
 */
import type { AuthThrottle } from "../auth/throttle.ts";
import type { CredentialStore } from "../auth/store.ts";
import type { Logger } from "../observe/log.ts";
import { type AuthOutcome, runAuthExchange, sendServerFinal } from "../smtp/auth_exchange.ts";
import type { AuthResult, ReceiverAuth } from "../smtp/receiver.ts";
import { reply } from "../wire/reply.ts";

/** Failed exchanges tolerated in one session (as on the ODMR port). */
export const MAX_AUTH_FAILURES = 3;

/** What the hook needs; one instance per connection. */
export interface SubmissionAuthDeps {
  readonly credentials: CredentialStore;
  readonly throttle: AuthThrottle;
  readonly log: Logger;
  readonly hostname: string;
  readonly timeoutMs: number;
  /** Connect → successful AUTH (`submission.auth_timeout`); absent: no deadline. */
  readonly authTimeoutMs?: number;
  readonly remoteAddress: string;
  /** Key for the fake SCRAM salts of unknown users (as on the ODMR port). */
  readonly fakeSaltKey?: Uint8Array;
  /** Counts a failure in `odmr_relay_auth_failures_total{mechanism}`. */
  readonly onFailure?: (mechanism: string) => void;
  /** Milliseconds since the epoch, for the deadline; `Date.now` by default (tests move it). */
  readonly now?: () => number;
}

/** The receiver's AUTH hook for one submission connection. */
export class SubmissionAuth implements ReceiverAuth {
  readonly #deps: SubmissionAuthDeps;
  #failures = 0;
  #deadline: number | undefined;

  constructor(deps: SubmissionAuthDeps) {
    this.#deps = deps;
    this.#startDeadline();
  }

  get deadline(): number | undefined {
    return this.#deadline;
  }

  /**
   * The session starts over under TLS (RFC 3207 §4.2), and so does the deadline: as on the
   * implicit-TLS port, whose session begins after its handshake, the client gets the whole
   * `submission.auth_timeout` to authenticate under TLS. STARTTLS is taken once per session,
   * so a stranger holds a slot for at most twice the deadline plus the handshake's own bound.
   */
  tlsStarted(): void {
    this.#startDeadline();
  }

  #startDeadline(): void {
    const ms = this.#deps.authTimeoutMs;
    if (ms !== undefined) this.#deadline = (this.#deps.now ?? Date.now)() + ms;
  }

  /** Bound of the next response line: `smtp.timeout`, or what is left of the deadline. */
  readonly #responseTimeoutMs = (): number => {
    const idle = this.#deps.timeoutMs;
    const deadline = this.deadline;
    return deadline === undefined ? idle : Math.max(1, Math.min(idle, deadline - Date.now()));
  };

  mechanisms(isSecure: boolean): readonly string[] {
    return isSecure
      ? ["SCRAM-SHA-256", "CRAM-MD5", "PLAIN", "LOGIN"]
      : ["SCRAM-SHA-256", "CRAM-MD5"];
  }

  async authenticate(
    args: string,
    link: Parameters<ReceiverAuth["authenticate"]>[1],
  ): Promise<AuthResult> {
    const deps = this.#deps;
    const outcome = await runAuthExchange({
      args,
      conn: link.conn,
      reader: link.reader,
      offered: link.offered,
      credentials: deps.credentials,
      ...(deps.fakeSaltKey ? { fakeSaltKey: deps.fakeSaltKey } : {}),
      hostname: deps.hostname,
      isRefusedAnyway: (user) => deps.throttle.isRefusedAnyway(deps.remoteAddress, user),
      timeoutMs: this.#responseTimeoutMs,
    });
    switch (outcome.kind) {
      case "reply":
        // A bare CR or LF in a response: the session ends, as after one in a command line.
        if (outcome.isFramingLost === true) {
          return { kind: "end", reply: outcome.reply, reason: "bareNewline" };
        }
        // Syntax, cancel, mechanism not offered (538 for PLAIN without TLS): nothing was tried.
        return { kind: "refused", reply: outcome.reply, isProtocolError: true };
      case "eof":
        return { kind: "end" };
      case "success":
      case "failure":
        return await this.#settle(outcome, link);
      default: {
        const never: never = outcome;
        throw new Error(`unreachable ${String(never)}`);
      }
    }
  }

  /**
   * As on the ODMR port: the throttle's delay holds the reply whatever the outcome (a right
   * password from a busy address is late, never refused); a cap answers `454 4.7.0`. SCRAM's
   * server-final (it proves the password right) waits for the same delay and verdict.
   */
  async #settle(
    outcome: Extract<AuthOutcome, { kind: "success" | "failure" }>,
    link: Parameters<ReceiverAuth["authenticate"]>[1],
  ): Promise<AuthResult> {
    const deps = this.#deps;
    const ip = deps.remoteAddress;
    const isSuccess = outcome.kind === "success";
    if (!isSuccess) deps.throttle.recordFailure(ip, outcome.user);
    const verdict = deps.throttle.judge({ ip, user: outcome.user, isSuccess });
    if (verdict.delayMs > 0) await new Promise((r) => setTimeout(r, verdict.delayMs));
    if (outcome.kind === "success" && !verdict.isRefused) {
      if (outcome.serverFinal !== undefined) {
        const at = { conn: link.conn, reader: link.reader, timeoutMs: this.#responseTimeoutMs };
        const instead = await sendServerFinal(at, outcome.serverFinal);
        if (instead?.kind === "eof") return { kind: "end" };
        if (instead !== undefined) {
          return { kind: "refused", reply: instead.reply, isProtocolError: true };
        }
      }
      deps.throttle.recordSuccess(ip, outcome.user);
      deps.log.info("auth", { user: outcome.user, mechanism: outcome.mechanism });
      return {
        kind: "success",
        user: outcome.user,
        reply: reply(235, "2.7.0", "Authentication successful"),
      };
    }
    this.#failures++;
    const fields = { remote: ip, user: outcome.user, mechanism: outcome.mechanism };
    if (isSuccess) {
      deps.log.warn("auth_throttled", fields);
    } else {
      deps.onFailure?.(outcome.mechanism);
      deps.log.warn("auth_failed", { ...fields, ...(verdict.isRefused ? { capped: true } : {}) });
    }
    if (this.#failures >= MAX_AUTH_FAILURES) {
      return { kind: "end", reply: reply(421, "4.7.0", "Too many authentication failures") };
    }
    return {
      kind: "refused",
      reply: verdict.isRefused
        ? reply(454, "4.7.0", "Temporary authentication failure, try again later")
        : reply(535, "5.7.8", "Authentication credentials invalid"),
      isProtocolError: false,
    };
  }
}
