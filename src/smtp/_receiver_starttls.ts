/**
 * STARTTLS on the SMTP server role (RFC 3207): the `220` goes out first, then whatever the
 * client pipelined behind STARTTLS in plaintext is thrown away (RFC 3207 §5, CVE-2011-0411:
 * command injection), and the session starts over in state `greeted` without its AUTH user.
 */
import { REPLIES } from "../wire/replies.ts";
import { checkStartTls } from "./_receiver_checks.ts";
import { endWith, mistake } from "./_receiver_outcome.ts";
import type { Outcome, ReceiverContext } from "./_receiver_types.ts";

/** STARTTLS in `greeted` or `ready` (the command table says so). */
export async function handleStartTls(ctx: ReceiverContext, args: string): Promise<Outcome> {
  const refusal = checkStartTls(args, {
    isOffered: ctx.options.tls !== undefined,
    isSecure: ctx.conn.isSecure,
    hasGreeted: ctx.state.kind !== "greeted",
  });
  const tlsOptions = ctx.options.tls;
  if (refusal !== undefined || tlsOptions === undefined) {
    return mistake(refusal ?? REPLIES.notImplemented);
  }
  // Handed to the kernel before the handshake takes the socket over.
  await ctx.sendNow(REPLIES.startTls, { untilSent: true });
  // RFC 3207 §4.2 / CVE-2011-0411: plaintext pipelined after STARTTLS is an injection.
  let discarded = ctx.reader.discardBuffered();
  try {
    const upgrade = await ctx.conn.startTlsServer({ secureContext: tlsOptions.secureContext });
    discarded += upgrade.discardedBytes;
  } catch (err) {
    ctx.log.info("smtp_tls_failed", { error: String(err) });
    return endWith("tlsFailed");
  }
  if (discarded > 0) {
    ctx.log.warn("smtp_starttls_injection", { discardedBytes: discarded });
  }
  ctx.options.auth?.tlsStarted?.();
  // Forget everything learned before TLS (RFC 3207 §4.2): a fresh EHLO is expected.
  return { replies: [], next: { state: { kind: "greeted" }, why: "STARTTLS" }, user: null };
}
