/**
 * The customer's receiver after ATRN in a test: an SmtpReceiver on an in-memory connection whose
 * sink hands off to a capture server over SMTP (tests/_helpers/captured_sink.ts), with short
 * local deadlines; both are closed after `fn`, whether it passed.
 */
import type { CaptureOptions, CaptureServer } from "../_helpers/capture_smtp.ts";
import { withCapturedSink } from "../_helpers/captured_sink.ts";
import { startReady } from "./_session.ts";

export type CustomerSession = Awaited<ReturnType<typeof startReady>>;

export function withCustomer(
  captureOpts: CaptureOptions,
  fn: (session: CustomerSession, capture: CaptureServer) => Promise<void>,
): Promise<void> {
  const timeouts = { commandMs: 5_000, dataFinalMs: 5_000 };
  return withCapturedSink(captureOpts, async (sink, capture) => {
    const session = await startReady({ otherSink: sink });
    try {
      await fn(session, capture);
    } finally {
      await session.end();
    }
  }, { timeouts });
}
