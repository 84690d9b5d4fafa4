/**
 * One SMTP AUTH exchange (RFC 4954), for the ODMR provider and the submission port: parses
 * `AUTH mech [initial]`, frames SASL steps as `334 base64` lines, handles `*` cancel and bad
 * base64. The mechanisms themselves live in src/auth; this file only speaks the SMTP framing.
 * Payloads are never logged.
 */
import type { Conn } from "../net/conn.ts";
import type { LineReader } from "../wire/line_reader.ts";
import { formatReply } from "../wire/reply.ts";
import type { Reply } from "../wire/reply.ts";
import {
  createSaslServer,
  isPlaintextMechanism,
  parseSaslMechanismName,
} from "../auth/sasl_server.ts";
import type { SaslStep } from "../auth/sasl_server.ts";
import type { CredentialStore } from "../auth/store.ts";
import { decodeBase64, encodeBase64 } from "../wire/base64.ts";
import { reply } from "../wire/reply.ts";

/** The replies of the AUTH exchange itself (RFC 4954 §4, §6), the same on every port. */
export const AUTH_EXCHANGE_REPLIES = {
  authSyntax: reply(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]"),
  encryptionRequired: reply(
    538,
    "5.7.11",
    "Encryption required for requested authentication mechanism",
  ),
  unknownMechanism: reply(504, "5.5.4", "Unrecognized authentication type"),
  badBase64: reply(501, "5.5.2", "Cannot decode base64 response"),
  malformedResponse: reply(501, "5.5.2", "Malformed authentication response"),
  expectedEmpty: reply(501, "5.5.2", "Expected an empty response"),
  exchangeTooLong: reply(501, "5.5.2", "Authentication exchange too long"),
  authLineTooLong: reply(500, "5.5.6", "Authentication exchange line too long"),
  authBareNewline: reply(500, "5.5.2", "Bare CR or LF not allowed"),
  authCancelled: reply(501, "5.0.0", "Authentication cancelled"),
} as const satisfies Record<string, Reply>;

/**
 * RFC 4954 §4: the AUTH command line and each response line may be 12288 octets (CRLF
 * included, as RFC 5321 counts command lines).
 */
export const MAX_AUTH_LINE_BYTES = 12288;

/** How an AUTH command ended. */
export type AuthOutcome =
  | {
    readonly kind: "success";
    readonly user: string;
    readonly mechanism: string;
    /**
     * Additional data with success (SCRAM's server-final `v=`), not sent yet: it proves the
     * password right, so the caller sends it (`sendServerFinal`) only once the throttle let the
     * success through, after its delay; a refused one is answered like a wrong password.
     */
    readonly serverFinal?: Uint8Array;
  }
  | { readonly kind: "failure"; readonly mechanism: string; readonly user?: string }
  /**
   * Refused before any credential was checked: send this reply. `isFramingLost`: a response
   * line held a bare CR or LF, so the session ends after it, as after one in a command line
   * (what follows the LF must never run as a command).
   */
  | { readonly kind: "reply"; readonly reply: Reply; readonly isFramingLost?: true }
  | { readonly kind: "eof" };

/** Runs the exchange for the text after `AUTH`. */
export async function runAuthExchange(opts: {
  args: string;
  conn: Conn;
  reader: LineReader;
  offered: readonly string[];
  credentials: CredentialStore;
  fakeSaltKey?: Uint8Array;
  hostname: string;
  /** The AUTH cap refuses `user` whatever the password: not checked (sasl_server.ts). */
  isRefusedAnyway?: (user: string) => boolean;
  /** Bound of each response line; a function is asked at each (a deadline that draws near). */
  timeoutMs: number | (() => number);
}): Promise<AuthOutcome> {
  const parts = opts.args.trim().split(/ +/);
  const name = (parts[0] ?? "").toUpperCase();
  if (name === "" || parts.length > 2) {
    return { kind: "reply", reply: AUTH_EXCHANGE_REPLIES.authSyntax };
  }
  if (name === "EXTERNAL" && opts.offered.includes(name)) return await runExternal(opts, parts[1]);
  const mechanism = parseSaslMechanismName(name);
  if (mechanism === undefined || !opts.offered.includes(mechanism)) {
    const needsTls = mechanism !== undefined && isPlaintextMechanism(mechanism);
    return {
      kind: "reply",
      reply: needsTls
        ? AUTH_EXCHANGE_REPLIES.encryptionRequired
        : AUTH_EXCHANGE_REPLIES.unknownMechanism,
    };
  }
  let initial: Uint8Array | undefined;
  const initialText = parts[1];
  if (initialText !== undefined) {
    const decoded = decodeInitialResponse(initialText);
    if (decoded === undefined) {
      return { kind: "reply", reply: AUTH_EXCHANGE_REPLIES.badBase64 };
    }
    initial = decoded;
  }
  const server = createSaslServer(mechanism, {
    ...(opts.fakeSaltKey ? { fakeSaltKey: opts.fakeSaltKey } : {}),
    ...(opts.isRefusedAnyway ? { isRefusedAnyway: opts.isRefusedAnyway } : {}),
    store: opts.credentials,
    hostname: opts.hostname,
  });
  let step: SaslStep = await server.start(initial);
  for (let round = 0; round < 10; round++) {
    switch (step.kind) {
      case "failure":
        if (step.reason === "malformed") {
          return { kind: "reply", reply: AUTH_EXCHANGE_REPLIES.malformedResponse };
        }
        return step.user === undefined
          ? { kind: "failure", mechanism }
          : { kind: "failure", mechanism, user: step.user };
      case "success":
        return step.data === undefined
          ? { kind: "success", user: step.user, mechanism }
          : { kind: "success", user: step.user, mechanism, serverFinal: step.data };
      case "challenge": {
        await opts.conn.write(challengeLine(step.data));
        const answer = await readResponse(opts);
        if (answer.kind !== "data") return answer.outcome;
        step = await server.next(answer.data);
        break;
      }
      default: {
        const never: never = step;
        throw new Error(`unreachable ${String(never)}`);
      }
    }
  }
  return { kind: "reply", reply: AUTH_EXCHANGE_REPLIES.exchangeTooLong };
}

/**
 * Sends a success's additional data (SCRAM's server-final) in a `334`, once the throttle let
 * the success through; the client answers empty (RFC 4954 §4). Undefined when it did (then
 * `235`), else how the exchange ended instead.
 */
export async function sendServerFinal(
  opts: { conn: Conn; reader: LineReader; timeoutMs: number | (() => number) },
  serverFinal: Uint8Array,
): Promise<Extract<AuthOutcome, { kind: "reply" | "eof" }> | undefined> {
  await opts.conn.write(challengeLine(serverFinal));
  const ack = await readResponse(opts);
  if (ack.kind !== "data") return ack.outcome;
  if (ack.data.length !== 0) return { kind: "reply", reply: AUTH_EXCHANGE_REPLIES.expectedEmpty };
  return undefined;
}

/**
 * EXTERNAL (RFC 4422 appendix A) over TLS: the client certificate is the credential, pinned
 * for one user (src/auth/cert_pins.ts). The only message is the authorization identity: empty
 * (`=`) or the pinned user's name; anything else fails like a wrong password.
 */
async function runExternal(
  opts: {
    conn: Conn;
    reader: LineReader;
    credentials: CredentialStore;
    timeoutMs: number | (() => number);
  },
  initialText: string | undefined,
): Promise<AuthOutcome> {
  let authzid: Uint8Array;
  if (initialText === undefined) {
    await opts.conn.write(challengeLine(new Uint8Array(0)));
    const answer = await readResponse(opts);
    if (answer.kind !== "data") return answer.outcome;
    authzid = answer.data;
  } else {
    const decoded = decodeInitialResponse(initialText);
    if (decoded === undefined) return { kind: "reply", reply: AUTH_EXCHANGE_REPLIES.badBase64 };
    authzid = decoded;
  }
  const asked = new TextDecoder("utf-8", { fatal: false }).decode(authzid);
  const fingerprint = opts.conn.peerCertificateFingerprint?.();
  const user = fingerprint === undefined
    ? undefined
    : opts.credentials.certificates.userOf(fingerprint);
  if (user !== undefined && (asked === "" || asked === user)) {
    return { kind: "success", user, mechanism: "EXTERNAL" };
  }
  const tried = asked !== "" ? asked : user;
  return tried === undefined
    ? { kind: "failure", mechanism: "EXTERNAL" }
    : { kind: "failure", mechanism: "EXTERNAL", user: utf8Prefix(tried, MAX_NAME_OCTETS) };
}

/** A failed name handed on (throttle key, log field): as the other mechanisms' bound (255). */
const MAX_NAME_OCTETS = 255;

/**
 * The longest start of `text` of at most `maxOctets` octets of UTF-8, never ending inside a
 * character (encodeInto writes whole characters only).
 */
function utf8Prefix(text: string, maxOctets: number): string {
  if (text.length * 3 <= maxOctets) return text;
  const { read } = new TextEncoder().encodeInto(text, new Uint8Array(maxOctets));
  return text.slice(0, read);
}

function challengeLine(data: Uint8Array): Uint8Array {
  return formatReply({ code: 334, lines: [encodeBase64(data)] });
}

type Response =
  | { readonly kind: "data"; readonly data: Uint8Array }
  | { readonly kind: "end"; readonly outcome: Extract<AuthOutcome, { kind: "reply" | "eof" }> };

async function readResponse(opts: {
  reader: LineReader;
  timeoutMs: number | (() => number);
}): Promise<Response> {
  const t = opts.timeoutMs;
  const line = await opts.reader.readLine(MAX_AUTH_LINE_BYTES, typeof t === "number" ? t : t());
  switch (line.kind) {
    case "eof":
      return { kind: "end", outcome: { kind: "eof" } };
    case "tooLong":
      return {
        kind: "end",
        outcome: { kind: "reply", reply: AUTH_EXCHANGE_REPLIES.authLineTooLong },
      };
    case "bareNewline":
      return {
        kind: "end",
        outcome: {
          kind: "reply",
          reply: AUTH_EXCHANGE_REPLIES.authBareNewline,
          isFramingLost: true,
        },
      };
    case "line": {
      const text = new TextDecoder().decode(line.line);
      if (text === "*") {
        return {
          kind: "end",
          outcome: { kind: "reply", reply: AUTH_EXCHANGE_REPLIES.authCancelled },
        };
      }
      const data = decodeBase64(text);
      if (data === undefined) {
        return {
          kind: "end",
          outcome: { kind: "reply", reply: AUTH_EXCHANGE_REPLIES.badBase64 },
        };
      }
      return { kind: "data", data };
    }
  }
}

/** The initial response of `AUTH MECH INITIAL`, or undefined when it is not base64. */
function decodeInitialResponse(text: string): Uint8Array | undefined {
  // A lone "=" is a present-but-empty initial response (RFC 4954 §4).
  return text === "=" ? new Uint8Array(0) : decodeBase64(text);
}
