/** The session a sink is told about, for tests that drive a sink without a receiver in front. */
import type { SessionInfo } from "../../src/smtp/sink.ts";

/** A plain ESMTP session from the provider on 127.0.0.1; `overrides` change single fields. */
export function sessionInfo(overrides: Partial<SessionInfo> = {}): SessionInfo {
  return {
    sessionId: "t1",
    remoteAddress: "127.0.0.1",
    heloName: "provider.test",
    isSecure: false,
    protocol: "ESMTP",
    ...overrides,
  };
}
