/**
 * ATRN on the provider's ODMR session (RFC 2645 §5.2): checks that every named domain belongs
 * to the authenticated user (all or nothing), claims them with a lease, answers 250/450/451/453,
 * and after `250` has the loop hand the same Conn and reader to the drain (drain.ts) as a
 * Reversal. Runs only in the `authenticated` state (the command table in provider.ts says so).
 */
import type { ClaimResult } from "../queue/types.ts";
import { parseAtrnArgs } from "../wire/atrn.ts";
import { drainLease } from "./drain.ts";
import { wantsLineRecords } from "./line_records.ts";
import { NO_EVENTS } from "./events.ts";
import { ODMR_REPLIES } from "./_provider_replies.ts";
import { mistake, say } from "./_provider_outcome.ts";
import type { ProviderContext, ProviderOutcome, Reversal } from "./_provider_types.ts";

/** `ATRN [domain,…]` once authenticated; ends the session after a drain. */
export async function handleAtrn(ctx: ProviderContext, args: string): Promise<ProviderOutcome> {
  const state = ctx.state;
  if (state.kind !== "authenticated") throw new Error(`ATRN in state ${state.kind}`);
  const events = ctx.deps.events;
  const parsed = parseAtrnArgs(args);
  if (!parsed.ok) return mistake(ODMR_REPLIES.atrnSyntax);
  const owned = ctx.deps.credentials.domainsOf(state.user);
  const domains = parsed.domains.length > 0 ? parsed.domains : owned;
  const notOwned = domains.filter((d) => !owned.includes(d));
  if (domains.length === 0 || notOwned.length > 0) {
    // RFC 2645 §5.2.1: all or nothing; the refusal names no domain.
    ctx.log.warn("atrn_refused", { user: state.user, domains: notOwned.join(",") });
    events?.atrn(state.user, "450");
    return say(ODMR_REPLIES.atrnRefused);
  }
  let claim: ClaimResult;
  try {
    claim = await ctx.deps.store.claim(domains, {
      owner: `${ctx.conn.id}@${Deno.pid}`,
      leaseSeconds: ctx.deps.options.leaseSeconds,
    });
  } catch (err) {
    // The queue cannot answer (database down or busy): temporary, the customer retries.
    ctx.log.error("atrn_claim_failed", { user: state.user, error: String(err) });
    events?.atrn(state.user, "451");
    return say(ODMR_REPLIES.atrnBusy);
  }
  if (claim.kind === "busy") {
    ctx.log.info("atrn_busy", { user: state.user, domain: claim.domain });
    events?.atrn(state.user, "451");
    return say(ODMR_REPLIES.atrnBusy);
  }
  if (claim.kind === "empty") {
    events?.atrn(state.user, "453");
    return say(ODMR_REPLIES.noMail);
  }
  events?.atrn(state.user, "250");
  ctx.log.info("atrn", { user: state.user, domains: domains.join(",") });
  const lease = claim.lease;
  const lineRecords = wantsLineRecords(ctx.deps.options.lineRecords, {
    isSecure: ctx.conn.isSecure,
    saidStartTls: ctx.saidStartTls,
    mechanism: state.mechanism,
  });
  ctx.log.debug("line_records", { on: lineRecords });
  const reversal: Reversal = {
    run: async () => {
      await drainLease({
        conn: ctx.conn,
        reader: ctx.reader,
        lease,
        user: state.user,
        log: ctx.log,
        events: events ?? NO_EVENTS,
        // Asked before each message: a domain moved to another user mid-drain stops it.
        owns: (domain) => ctx.deps.credentials.ownerOf(domain) === state.user,
        bounce: {
          store: ctx.deps.store,
          hostname: ctx.deps.options.hostname,
          isLocalDomain: (domain) => ctx.deps.credentials.ownerOf(domain) !== undefined,
        },
        options: { ...ctx.deps.options, lineRecords },
      });
    },
    // Unreleased, the lease still ends by itself at its expiry: the domains are not lost.
    release: () =>
      lease.release().catch((err: unknown) => {
        ctx.log.error("lease_release_failed", { user: state.user, error: String(err) });
      }),
  };
  return {
    replies: [ODMR_REPLIES.reversing],
    next: { state: { kind: "reversed", user: state.user }, why: "ATRN" },
    reversal,
  };
}
