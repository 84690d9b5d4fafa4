/**
 * The submission port's AUTH as the AUTH-cap tests drive it: a `SubmissionAuth` for a peer at
 * `from` over the given store and throttle, and one `AUTH PLAIN` exchange on a connection pair.
 */
import { Buffer } from "node:buffer";
import type { CredentialStore } from "../../src/auth/store.ts";
import type { AuthThrottle } from "../../src/auth/throttle.ts";
import { type Logger, NULL_LOGGER } from "../../src/observe/log.ts";
import { SubmissionAuth } from "../../src/submission/auth.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { formatReplyText } from "../../src/wire/reply.ts";
import { connPair } from "../_helpers/conn_pair.ts";

/** The submission AUTH of a session from `from` (hostname mx.test, 2 s to answer). */
export function submissionAuth(
  store: CredentialStore,
  throttle: AuthThrottle,
  from: string,
  log: Logger = NULL_LOGGER,
): SubmissionAuth {
  return new SubmissionAuth({
    credentials: store,
    throttle,
    log,
    hostname: "mx.test",
    timeoutMs: 2_000,
    remoteAddress: from,
  });
}

/** One `AUTH PLAIN <initial response>` as `user` through `auth`; the final reply's text. */
export async function authPlain(
  auth: SubmissionAuth,
  user: string,
  password: string,
): Promise<string> {
  const { server, client } = connPair();
  try {
    const initial = Buffer.from(`\0${user}\0${password}`).toString("base64");
    const result = await auth.authenticate(`PLAIN ${initial}`, {
      conn: server,
      reader: new LineReader(server),
      offered: ["PLAIN"],
    });
    return result.reply === undefined ? "" : formatReplyText(result.reply);
  } finally {
    client.destroy();
    server.destroy();
  }
}
