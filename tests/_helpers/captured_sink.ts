/**
 * A LocalSmtpSink that hands off to a fresh capture server (capture_smtp.ts) on 127.0.0.1, over
 * SMTP or LMTP as the capture options say; both are closed after the test, whether it passed.
 */
import { LocalSmtpSink, type LocalSmtpSinkOptions } from "../../src/smtp/sinks/local_smtp.ts";
import { type CaptureOptions, type CaptureServer, startCaptureServer } from "./capture_smtp.ts";

/** Runs `fn` with the sink (our name "pi.home" unless `sinkOpts` says) and its capture server. */
export async function withCapturedSink(
  captureOpts: CaptureOptions,
  fn: (sink: LocalSmtpSink, capture: CaptureServer) => Promise<void>,
  sinkOpts: Partial<Omit<LocalSmtpSinkOptions, "target">> = {},
): Promise<void> {
  const capture = await startCaptureServer(captureOpts);
  const sink = new LocalSmtpSink({
    target: { kind: captureOpts.protocol ?? "smtp", host: capture.host, port: capture.port },
    hostname: "pi.home",
    ...sinkOpts,
  });
  try {
    await fn(sink, capture);
  } finally {
    await sink.close();
    await capture.close();
  }
}
