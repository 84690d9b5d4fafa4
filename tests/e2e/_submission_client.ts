/**
 * Submits messages to the submission port of a test `serve` as one authenticated user, in
 * one session (CRAM-MD5, allowed without TLS): the sending side of the outbound e2e tests.
 */
import { match } from "node:assert/strict";
import crypto from "node:crypto";
import { SmtpSession } from "./_smtp_session.ts";

/** One message: its recipient and the text after the headers' From line. */
export interface Submitted {
  readonly to: string;
  readonly subject: string;
}

/**
 * Logs in as `user` and submits every message from `from` (each must get 250); throws
 * otherwise. A message's text is `From`, `Subject` and a one-line body.
 */
export async function submitAll(
  port: number,
  login: { readonly user: string; readonly password: string; readonly from: string },
  messages: readonly Submitted[],
): Promise<void> {
  const { session } = await SmtpSession.open(port);
  try {
    match(await session.command("EHLO client.test"), /^250 /);
    const challenge = await session.command("AUTH CRAM-MD5");
    const digest = crypto.createHmac("md5", login.password).update(atob(challenge.slice(4)))
      .digest("hex");
    match(await session.command(btoa(`${login.user} ${digest}`)), /^235 /);
    for (const m of messages) {
      const reply = await session.sendMessage(
        login.from,
        m.to,
        `From: ${login.from}\r\nSubject: ${m.subject}\r\n\r\nbody of ${m.subject}\r\n`,
      );
      match(reply, /^250 /, m.subject);
    }
  } finally {
    session.close();
  }
}
