/**
 * STARTTLS on the provider's ODMR session (RFC 3207), in the greeted state: the `220` goes out
 * first, whatever the client pipelined behind STARTTLS in plaintext is thrown away
 * (CVE-2011-0411: command injection), and the session starts over in state `initial`.
 */
import { ODMR_REPLIES } from "./_provider_replies.ts";
import { endWith, mistake } from "./_provider_outcome.ts";
import type { ProviderContext, ProviderOutcome } from "./_provider_types.ts";

/** STARTTLS in the greeted state (the command table says so). */
export async function handleStartTls(
  ctx: ProviderContext,
  args: string,
): Promise<ProviderOutcome> {
  if (args.trim() !== "") return mistake(ODMR_REPLIES.noParameters);
  if (ctx.conn.isSecure) return mistake(ODMR_REPLIES.alreadySecure);
  const secureContext = ctx.deps.options.secureContext;
  if (secureContext === undefined) return mistake(ODMR_REPLIES.startTlsUnavailable);
  await ctx.sendNow(ODMR_REPLIES.startTls);
  // CVE-2011-0411: anything pipelined after STARTTLS in plaintext is an injection attempt.
  const dropped = ctx.reader.discardBuffered();
  let result;
  try {
    // A client certificate is asked for, never required: AUTH EXTERNAL (RFC 4422 appendix A).
    result = await ctx.conn.startTlsServer({ secureContext, requestCert: true });
  } catch (err) {
    // Garbage instead of a ClientHello, or a handshake the peer abandons: a peer fault,
    // logged below error level so that strangers cannot fill the error log.
    ctx.log.info("tls_failed", { remote: ctx.conn.remoteAddress, reason: String(err) });
    return endWith();
  }
  const injected = dropped + result.discardedBytes;
  if (injected > 0) ctx.log.warn("starttls_injection_dropped", { bytes: injected });
  ctx.log.info("tls", { remote: ctx.conn.remoteAddress });
  // Forget everything learned before TLS (RFC 3207 §4.2): a fresh EHLO is expected.
  return { replies: [], next: { state: { kind: "initial" }, why: "STARTTLS" }, saidStartTls: true };
}
