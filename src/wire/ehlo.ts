/**
 * Reads an EHLO (or LHLO) reply into the capabilities a client may use (RFC 5321 §4.1.1.1:
 * first line is the server's domain, each further line one keyword with its parameters).
 * Pure. Keywords are case-insensitive; unknown ones are kept in `keywords` and ignored.
 */
import type { Reply } from "./reply.ts";

/** What the peer offered in its EHLO reply. */
export interface Capabilities {
  /** The domain on the first line (as given; may be empty). */
  readonly domain: string;
  /** false after a HELO fallback: no extension may be used. */
  readonly isExtended: boolean;
  /** SIZE offered: the announced maximum in octets, 0 meaning no fixed limit (RFC 1870). */
  readonly size?: number;
  readonly eightBitMime: boolean;
  readonly pipelining: boolean;
  readonly smtpUtf8: boolean;
  readonly chunking: boolean;
  readonly binaryMime: boolean;
  readonly dsn: boolean;
  readonly enhancedStatusCodes: boolean;
  readonly startTls: boolean;
  /** SASL mechanisms, upper case, in the order offered (AUTH and the old AUTH= form). */
  readonly authMechanisms: readonly string[];
  readonly atrn: boolean;
  /** Every keyword (upper case) with its parameter text ("" when none). */
  readonly keywords: ReadonlyMap<string, string>;
}

/**
 * A private EHLO keyword (RFC 5321 §2.2.2: an extension by agreement between both ends, here our
 * `fetch` and our provider): after its reply to `BDAT … LAST`, whatever that reply, the server
 * has no mail transaction open, so the client's next `MAIL` needs no `RSET` before it. RFC 3030
 * does not say so: a standard server may keep a transaction whose BDAT it refused for want of
 * recipients, and take the next message's RCPTs into it after refusing its MAIL.
 */
export const LAST_ENDS_TRANSACTION = "X-LAST-ENDS-TRANSACTION";

const KEYWORD_RE = /^([A-Za-z0-9][A-Za-z0-9-]*)(?:[ =](.*))?$/s;

/** Capabilities of a peer that only answered HELO: nothing beyond RFC 5321. */
export function heloCapabilities(reply: Reply): Capabilities {
  return {
    domain: firstWord(reply.lines[0] ?? ""),
    isExtended: false,
    eightBitMime: false,
    pipelining: false,
    smtpUtf8: false,
    chunking: false,
    binaryMime: false,
    dsn: false,
    enhancedStatusCodes: false,
    startTls: false,
    authMechanisms: [],
    atrn: false,
    keywords: new Map(),
  };
}

/** Parses a positive EHLO/LHLO reply. Malformed keyword lines are skipped. */
export function parseEhloReply(reply: Reply): Capabilities {
  const keywords = new Map<string, string>();
  const auth: string[] = [];
  for (const line of reply.lines.slice(1)) {
    const m = KEYWORD_RE.exec(line.trim());
    if (!m || m[1] === undefined) continue;
    const keyword = m[1].toUpperCase();
    const params = (m[2] ?? "").trim();
    if (keyword === "AUTH") {
      for (const mech of params.split(/\s+/)) {
        const upper = mech.toUpperCase();
        if (upper !== "" && !auth.includes(upper)) auth.push(upper);
      }
    }
    if (!keywords.has(keyword)) keywords.set(keyword, params);
  }
  const size = parseSize(keywords.get("SIZE"));
  return {
    domain: firstWord(reply.lines[0] ?? ""),
    isExtended: true,
    ...(size === undefined ? {} : { size }),
    eightBitMime: keywords.has("8BITMIME"),
    pipelining: keywords.has("PIPELINING"),
    smtpUtf8: keywords.has("SMTPUTF8"),
    chunking: keywords.has("CHUNKING"),
    binaryMime: keywords.has("BINARYMIME"),
    dsn: keywords.has("DSN"),
    enhancedStatusCodes: keywords.has("ENHANCEDSTATUSCODES"),
    startTls: keywords.has("STARTTLS"),
    authMechanisms: auth,
    atrn: keywords.has("ATRN"),
    keywords,
  };
}

/** SIZE parameter: absent keyword → undefined; bare or unparsable → 0 (no announced limit). */
function parseSize(params: string | undefined): number | undefined {
  if (params === undefined) return undefined;
  if (!/^\d{1,15}$/.test(params)) return 0;
  return Number(params);
}

function firstWord(line: string): string {
  return line.trim().split(/\s+/)[0] ?? "";
}
