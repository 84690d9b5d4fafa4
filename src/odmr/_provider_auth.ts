/**
 * AUTH on the provider's ODMR session: the TLS policy, the SASL exchange (smtp/auth_exchange.ts),
 * and the throttle's verdict on the reply (src/auth/throttle.ts). Runs only in the `greeted`
 * state (the command table in provider.ts says so); payloads are never logged.
 */
import { isPlaintextMechanism, SASL_MECHANISMS } from "../auth/sasl_server.ts";
import type { SaslMechanismName } from "../auth/sasl_server.ts";
import { runAuthExchange, sendServerFinal } from "../smtp/auth_exchange.ts";
import type { AuthOutcome } from "../smtp/auth_exchange.ts";
import { ODMR_REPLIES } from "./_provider_replies.ts";
import { endWith, mistake, say } from "./_provider_outcome.ts";
import type { ProviderContext, ProviderOutcome } from "./_provider_types.ts";

/** Failed AUTH attempts on one connection before `421` (docs/protocol.md §6.4). */
export const MAX_AUTH_FAILURES = 3;

/**
 * Mechanisms offered now: none before TLS when `requireTls`; PLAIN and LOGIN (password in
 * clear) only under TLS; EXTERNAL only under TLS when the client presented a certificate.
 */
export function offeredMechanisms(
  ctx: Pick<ProviderContext, "conn" | "deps">,
): (SaslMechanismName | "EXTERNAL")[] {
  const isSecure = ctx.conn.isSecure;
  if (ctx.deps.options.requireTls && !isSecure) return [];
  const offered: (SaslMechanismName | "EXTERNAL")[] = SASL_MECHANISMS.filter((m) =>
    isSecure || !isPlaintextMechanism(m)
  );
  if (isSecure && ctx.conn.peerCertificateFingerprint?.() !== undefined) offered.push("EXTERNAL");
  return offered;
}

/** `AUTH mechanism [initial-response]` in the greeted state. */
export async function handleAuth(ctx: ProviderContext, args: string): Promise<ProviderOutcome> {
  const state = ctx.state;
  if (state.kind !== "greeted") throw new Error(`AUTH in state ${state.kind}`);
  if (ctx.deps.options.requireTls && !ctx.conn.isSecure) return mistake(ODMR_REPLIES.tlsRequired);
  const outcome = await runAuthExchange({
    args,
    conn: ctx.conn,
    reader: ctx.reader,
    offered: offeredMechanisms(ctx),
    credentials: ctx.deps.credentials,
    ...(ctx.deps.fakeSaltKey ? { fakeSaltKey: ctx.deps.fakeSaltKey } : {}),
    hostname: ctx.deps.options.hostname,
    isRefusedAnyway: (user) => ctx.deps.throttle.isRefusedAnyway(ctx.conn.remoteAddress, user),
    timeoutMs: responseTimeoutMs(ctx),
  });
  switch (outcome.kind) {
    case "reply":
      // A bare CR or LF in a response: framing cannot be trusted any more (as in provider.ts).
      if (outcome.isFramingLost === true) return endWith(outcome.reply);
      // Syntax problems, cancel, mechanism not offered: no credential was tried.
      return mistake(outcome.reply);
    case "eof":
      return endWith();
    case "success":
    case "failure":
      return await settleAuth(ctx, outcome, state.ehlo);
    default: {
      const never: never = outcome;
      throw new Error(`unreachable ${String(never)}`);
    }
  }
}

/** Asked at each response line: the AUTH deadline bounds the whole exchange, not each line. */
function responseTimeoutMs(ctx: ProviderContext): () => number {
  return () => ctx.readTimeoutMs();
}

/**
 * Answers a checked AUTH (issue 10 item 5): the throttle's delay holds the reply whatever the
 * outcome, so a correct password from a busy address is late, never refused; a cap turns the
 * reply into `454 4.7.0`, which reveals nothing. SCRAM's server-final (it proves the password
 * right) waits for the same delay and verdict.
 */
async function settleAuth(
  ctx: ProviderContext,
  outcome: Extract<AuthOutcome, { kind: "success" | "failure" }>,
  ehlo: string,
): Promise<ProviderOutcome> {
  const ip = ctx.conn.remoteAddress;
  const throttle = ctx.deps.throttle;
  const isSuccess = outcome.kind === "success";
  // A failure counts before the verdict, so its own reply is already held (1 s, 2 s, …).
  if (!isSuccess) throttle.recordFailure(ip, outcome.user);
  const verdict = throttle.judge({ ip, user: outcome.user, isSuccess });
  if (verdict.delayMs > 0) await new Promise((r) => setTimeout(r, verdict.delayMs));
  if (outcome.kind === "success" && !verdict.isRefused) {
    if (outcome.serverFinal !== undefined) {
      const link = { conn: ctx.conn, reader: ctx.reader, timeoutMs: responseTimeoutMs(ctx) };
      const instead = await sendServerFinal(link, outcome.serverFinal);
      if (instead !== undefined) return instead.kind === "eof" ? endWith() : mistake(instead.reply);
    }
    throttle.recordSuccess(ip, outcome.user);
    ctx.log.info("auth", { user: outcome.user, mechanism: outcome.mechanism });
    const user = outcome.user;
    return {
      replies: [ODMR_REPLIES.authSuccess],
      next: {
        state: { kind: "authenticated", ehlo, user, mechanism: outcome.mechanism },
        why: "AUTH",
      },
      isAuthenticated: true,
    };
  }
  const fields = { remote: ip, user: outcome.user, mechanism: outcome.mechanism };
  if (isSuccess) {
    // The right password while a cap holds, from an address new to this account.
    ctx.log.warn("auth_throttled", fields);
  } else {
    ctx.deps.events?.authFailure(outcome.mechanism);
    ctx.log.warn("auth_failed", { ...fields, ...(verdict.isRefused ? { capped: true } : {}) });
  }
  // The loop counts it: at MAX_AUTH_FAILURES it answers `421` instead, and the session ends.
  const r = verdict.isRefused ? ODMR_REPLIES.authTemporary : ODMR_REPLIES.authInvalid;
  return { ...say(r), isAuthFailure: true };
}
