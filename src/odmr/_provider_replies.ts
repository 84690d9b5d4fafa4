/**
 * Every reply the provider's ODMR session (port 366, before reversal) sends, in one place, so
 * one wording is used everywhere (docs/architecture.md "Conventions"). Short and generic: reasons go to the log. ATRN
 * codes per RFC 2645 §5.2, AUTH codes per RFC 4954 §6, enhanced codes per RFC 3463.
 */
import { reply } from "../wire/reply.ts";
import type { Reply } from "../wire/reply.ts";
import { REPLIES } from "../wire/replies.ts";
import { AUTH_EXCHANGE_REPLIES } from "../smtp/auth_exchange.ts";

/** Fixed replies of the ODMR session. */
export const ODMR_REPLIES = {
  ok: reply(250, "2.0.0", "OK"),
  startTls: reply(220, "2.0.0", "Ready to start TLS"),
  authSuccess: reply(235, "2.7.0", "Authentication successful"),
  reversing: reply(250, "2.0.0", "OK now reversing the connection"),

  lineTooLong: reply(500, "5.5.2", "Line too long"),
  bareNewline: reply(500, "5.5.2", "Bare CR or LF not allowed, closing connection"),
  notImplemented: reply(502, "5.5.1", "Command not implemented on the ODMR port"),
  emptyCommand: REPLIES.emptyCommand,
  ehloSyntax: reply(501, "5.5.4", "EHLO needs a domain"),
  heloSyntax: reply(501, "5.5.4", "HELO needs a domain"),
  noParameters: reply(501, "5.5.4", "Syntax error (no parameters allowed)"),
  heloFirst: reply(503, "5.5.1", "Send EHLO first"),
  alreadySecure: reply(503, "5.5.1", "TLS already active"),
  startTlsUnavailable: reply(502, "5.5.1", "STARTTLS not available"),
  startTlsAfterAuth: reply(503, "5.5.1", "STARTTLS not allowed after AUTH"),
  alreadyAuthenticated: reply(503, "5.5.1", "Already authenticated"),
  tlsRequired: reply(530, "5.7.0", "Must issue a STARTTLS command first"),

  authSyntax: AUTH_EXCHANGE_REPLIES.authSyntax,
  encryptionRequired: AUTH_EXCHANGE_REPLIES.encryptionRequired,
  unknownMechanism: AUTH_EXCHANGE_REPLIES.unknownMechanism,
  badBase64: AUTH_EXCHANGE_REPLIES.badBase64,
  malformedResponse: AUTH_EXCHANGE_REPLIES.malformedResponse,
  expectedEmpty: AUTH_EXCHANGE_REPLIES.expectedEmpty,
  exchangeTooLong: AUTH_EXCHANGE_REPLIES.exchangeTooLong,
  authLineTooLong: AUTH_EXCHANGE_REPLIES.authLineTooLong,
  authBareNewline: AUTH_EXCHANGE_REPLIES.authBareNewline,
  authCancelled: AUTH_EXCHANGE_REPLIES.authCancelled,
  authInvalid: reply(535, "5.7.8", "Authentication credentials invalid"),
  authTemporary: reply(454, "4.7.0", "Temporary authentication failure, try again later"),
  tooManyAuthFailures: reply(421, "4.7.0", "Too many authentication failures"),

  authRequired: reply(530, "5.7.0", "Authentication required"),
  atrnSyntax: reply(501, "5.5.4", "Invalid domain list"),
  atrnRefused: reply(450, "4.7.1", "ATRN request refused"),
  atrnBusy: reply(451, "4.3.0", "Unable to process ATRN request now"),
  noMail: reply(453, "4.2.0", "You have no mail"),

  tooManyErrors: REPLIES.tooManyErrors,
  tooManyIdleCommands: REPLIES.tooManyIdleCommands,
  internalError: REPLIES.internalError,
} as const satisfies Record<string, Reply>;

/** The 220 greeting; no enhanced code (RFC 2034 §3). */
export function odmrGreeting(hostname: string): Reply {
  return reply(220, undefined, `${hostname} ESMTP on-demand mail relay ready`);
}

/** 250 to EHLO: the greeting line, then the keywords. */
export function odmrEhloReply(hostname: string, client: string, keywords: string[]): Reply {
  return { code: 250, lines: [`${hostname} greets ${client}`, ...keywords] };
}

/** 250 to HELO. */
export function odmrHeloReply(hostname: string, client: string): Reply {
  return reply(250, undefined, `${hostname} greets ${client}`);
}

/** 221 to QUIT. */
export function odmrBye(hostname: string): Reply {
  return reply(221, "2.0.0", `${hostname} closing connection`);
}

/** 421 when the idle timeout passed. */
export function odmrIdleTimeout(hostname: string): Reply {
  return reply(421, "4.4.2", `${hostname} Timeout, closing connection`);
}

/** 421 when `odmr.auth_timeout` passed without a successful AUTH. */
export function odmrAuthTimeout(hostname: string): Reply {
  return reply(421, "4.7.0", `${hostname} Authentication timeout, closing connection`);
}
