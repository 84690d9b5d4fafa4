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

/** Who logs in, and the envelope sender of what they submit. */
export interface Login {
  readonly user: string;
  readonly password: string;
  readonly from: string;
}

/** `n` messages to `u0@domain`, `u1@domain`, … with the subjects `<prefix>0`, `<prefix>1`, …. */
export function numbered(prefix: string, domain: string, n: number): Submitted[] {
  return Array.from({ length: n }, (_, i) => ({ to: `u${i}@${domain}`, subject: `${prefix}${i}` }));
}

/** The subject of a message `submitAll` wrote, as a receiving MTA got it (undefined: none). */
export function subjectOf(body: Uint8Array): string | undefined {
  return /\r\nSubject: (\S+)\r\n/.exec(new TextDecoder().decode(body))?.[1];
}

/**
 * Opens a plain session, says EHLO and logs in as `user` with CRAM-MD5 (allowed without TLS);
 * asserts each step. The caller closes the session (`using` does).
 */
export async function cramSession(
  port: number,
  user: string,
  password: string,
): Promise<SmtpSession> {
  const { session } = await SmtpSession.open(port);
  try {
    match(await session.command("EHLO client.test"), /^250 /);
    const challenge = await session.command("AUTH CRAM-MD5");
    match(challenge, /^334 /);
    const digest = crypto.createHmac("md5", password).update(atob(challenge.slice(4)))
      .digest("hex");
    match(await session.command(btoa(`${user} ${digest}`)), /^235 2\.7\.0/);
    return session;
  } catch (err) {
    session.close();
    throw err;
  }
}

/**
 * Logs in as `login.user` and submits every message from `login.from` (each must get 250);
 * throws otherwise. A message's text is `From`, `Subject` and a one-line body.
 */
export async function submitAll(
  port: number,
  login: Login,
  messages: readonly Submitted[],
): Promise<void> {
  using session = await cramSession(port, login.user, login.password);
  for (const m of messages) {
    const reply = await session.sendMessage(
      login.from,
      m.to,
      `From: ${login.from}\r\nSubject: ${m.subject}\r\n\r\nbody of ${m.subject}\r\n`,
    );
    match(reply, /^250 /, m.subject);
  }
}
