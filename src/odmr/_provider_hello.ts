/**
 * EHLO and HELO on the provider's ODMR session, as ProviderOutcomes for the loop in
 * provider.ts. EHLO does not undo a successful AUTH (RFC 4954 §4): it only renames the client.
 * The keywords follow from the connection: AUTH only before it succeeded (and as the TLS policy
 * allows), STARTTLS only when configured and not yet secure.
 */
import { offeredMechanisms } from "./_provider_auth.ts";
import { ODMR_REPLIES, odmrEhloReply, odmrHeloReply } from "./_provider_replies.ts";
import { mistake } from "./_provider_outcome.ts";
import type { ProviderContext, ProviderOutcome } from "./_provider_types.ts";

/** EHLO (`isExtended`) or HELO in any state before the reversal (the command table says so). */
export function handleHello(
  ctx: ProviderContext,
  args: string,
  isExtended: boolean,
): ProviderOutcome {
  const name = args.trim();
  const hostname = ctx.deps.options.hostname;
  if (name === "") return mistake(isExtended ? ODMR_REPLIES.ehloSyntax : ODMR_REPLIES.heloSyntax);
  const state = ctx.state;
  const why = isExtended ? "EHLO" : "HELO";
  const next = {
    state: state.kind === "authenticated"
      ? { ...state, ehlo: name }
      : { kind: "greeted" as const, ehlo: name },
    why,
  };
  if (!isExtended) return { replies: [odmrHeloReply(hostname, name)], next };
  const keywords: string[] = [];
  if (state.kind !== "authenticated") {
    const mechanisms = offeredMechanisms(ctx);
    if (mechanisms.length > 0) keywords.push(`AUTH ${mechanisms.join(" ")}`);
  }
  keywords.push("ATRN", "ENHANCEDSTATUSCODES", "PIPELINING");
  if (ctx.deps.options.secureContext !== undefined && !ctx.conn.isSecure) keywords.push("STARTTLS");
  return { replies: [odmrEhloReply(hostname, name, keywords)], next };
}
