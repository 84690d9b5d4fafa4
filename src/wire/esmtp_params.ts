/**
 * ESMTP parameters after the path of MAIL and RCPT (`keyword[=value]` separated by SP,
 * RFC 5321 §4.1.2): SIZE (RFC 1870), BODY (RFC 6152/3030), SMTPUTF8 (RFC 6531), RET/ENVID/
 * NOTIFY/ORCPT (RFC 3461) and AUTH (RFC 4954, accepted and ignored). Pure; never throws.
 */

/** Parameters of MAIL FROM. */
export interface MailParameters {
  readonly size?: number;
  readonly body?: "7BIT" | "8BITMIME" | "BINARYMIME";
  readonly smtputf8?: boolean;
  readonly ret?: "FULL" | "HDRS";
  /** xtext as received. */
  readonly envid?: string;
  /** PRDR (draft-hall-prdr-00): one reply per recipient after the body. */
  readonly prdr?: boolean;
}

/** Parameters of RCPT TO. */
export interface RcptParameters {
  /** `NEVER` or a comma list of SUCCESS, FAILURE, DELAY (upper-cased). */
  readonly notify?: string;
  /** `addr-type;xtext` as received. */
  readonly orcpt?: string;
}

/** Why a parameter list was refused: `unknown` maps to 555 5.5.4, the rest to 501 5.5.4. */
export type ParamFault = "syntax" | "unknown" | "duplicate" | "badValue";

/** A parsed parameter list, or the fault and the keyword it concerns. */
export type ParamsParse<T> =
  | { readonly ok: true; readonly params: T }
  | { readonly ok: false; readonly fault: ParamFault; readonly keyword: string };

const KEYWORD_RE = /^[A-Za-z0-9][A-Za-z0-9-]*$/;
// esmtp-value: %d33-60 / %d62-126, plus UTF-8 under SMTPUTF8 (RFC 6531 §3.3)
const VALUE_RE = /^[\x21-\x3c\x3e-\x7e\u0080-\u{10FFFF}]+$/u;
const XTEXT_RE = /^(?:[\x21-\x2a\x2c-\x3c\x3e-\x7e]|\+[0-9A-F]{2})*$/;
const MAX_SIZE_DIGITS = 20;
const MAX_ENVID_CHARS = 100;

const NO_PAIRS = { ok: true, pairs: Object.freeze([]) } as const;

/** Splits `K1=V1 K2` into pairs; rejects duplicates (case-insensitive). */
function splitParams(
  text: string,
): { ok: true; pairs: readonly (readonly [string, string | undefined])[] } | {
  ok: false;
  fault: ParamFault;
  keyword: string;
} {
  // No parameters (most MAIL and RCPT commands): nothing to split, no set of keywords.
  if (text === "") return NO_PAIRS;
  const pairs: [string, string | undefined][] = [];
  const seen = new Set<string>();
  for (const item of text.split(/ +/)) {
    if (item === "") continue;
    const eq = item.indexOf("=");
    const keyword = (eq < 0 ? item : item.slice(0, eq)).toUpperCase();
    const value = eq < 0 ? undefined : item.slice(eq + 1);
    if (!KEYWORD_RE.test(keyword)) return { ok: false, fault: "syntax", keyword };
    if (value !== undefined && !VALUE_RE.test(value)) {
      return { ok: false, fault: "syntax", keyword };
    }
    if (seen.has(keyword)) return { ok: false, fault: "duplicate", keyword };
    seen.add(keyword);
    pairs.push([keyword, value]);
  }
  return { ok: true, pairs };
}

/** True for RFC 3461 §4 xtext. */
export function isXtext(text: string): boolean {
  return XTEXT_RE.test(text);
}

/**
 * True for xtext whose octets are printable US-ASCII or white space (SP, HTAB), as RFC 3461
 * §4.2 (ORCPT) and §4.4 (ENVID) want them before encoding: a decoded line break or NUL would
 * reach a report field or the next hop's command line (Postfix refuses such an ENVID, 501 5.5.4).
 */
export function isPrintableXtext(text: string): boolean {
  if (!XTEXT_RE.test(text)) return false;
  for (let i = text.indexOf("+"); i >= 0; i = text.indexOf("+", i + 1)) {
    const octet = parseInt(text.slice(i + 1, i + 3), 16);
    if ((octet < 0x20 && octet !== 0x09) || octet >= 0x7f) return false;
  }
  return true;
}

/** Parses the parameters of MAIL FROM. */
export function parseMailParameters(text: string): ParamsParse<MailParameters> {
  const split = splitParams(text);
  if (!split.ok) return split;
  const out: {
    size?: number;
    body?: "7BIT" | "8BITMIME" | "BINARYMIME";
    smtputf8?: boolean;
    ret?: "FULL" | "HDRS";
    envid?: string;
    prdr?: boolean;
  } = {};
  for (const [keyword, value] of split.pairs) {
    const bad = { ok: false, fault: "badValue", keyword } as const;
    switch (keyword) {
      case "SIZE":
        if (value === undefined || !/^[0-9]+$/.test(value) || value.length > MAX_SIZE_DIGITS) {
          return bad;
        }
        out.size = Number(value);
        break;
      case "BODY": {
        const v = value?.toUpperCase();
        if (v !== "7BIT" && v !== "8BITMIME" && v !== "BINARYMIME") return bad;
        out.body = v;
        break;
      }
      case "SMTPUTF8":
        if (value !== undefined) return bad;
        out.smtputf8 = true;
        break;
      case "RET": {
        const v = value?.toUpperCase();
        if (v !== "FULL" && v !== "HDRS") return bad;
        out.ret = v;
        break;
      }
      case "ENVID":
        if (value === undefined || value.length > MAX_ENVID_CHARS || !isPrintableXtext(value)) {
          return bad;
        }
        out.envid = value;
        break;
      case "PRDR":
        if (value !== undefined) return bad;
        out.prdr = true;
        break;
      case "AUTH":
        // RFC 4954 §5: accepted and ignored; this server does not vouch for a submitter.
        if (value === undefined) return bad;
        break;
      default:
        return { ok: false, fault: "unknown", keyword };
    }
  }
  return { ok: true, params: out };
}

/** Parses the parameters of RCPT TO. */
export function parseRcptParameters(text: string): ParamsParse<RcptParameters> {
  const split = splitParams(text);
  if (!split.ok) return split;
  const out: { notify?: string; orcpt?: string } = {};
  for (const [keyword, value] of split.pairs) {
    const bad = { ok: false, fault: "badValue", keyword } as const;
    switch (keyword) {
      case "NOTIFY": {
        const v = value?.toUpperCase();
        if (v === undefined || !isNotify(v)) return bad;
        out.notify = v;
        break;
      }
      case "ORCPT": {
        const semi = value?.indexOf(";") ?? -1;
        if (value === undefined || semi <= 0) return bad;
        const addrType = value.slice(0, semi);
        const addr = value.slice(semi + 1);
        if (!/^[A-Za-z0-9-]+$/.test(addrType) || addr === "" || !isPrintableXtext(addr)) {
          return bad;
        }
        out.orcpt = value;
        break;
      }
      default:
        return { ok: false, fault: "unknown", keyword };
    }
  }
  return { ok: true, params: out };
}

/** RFC 3461 §4.1: NEVER alone, or a list of SUCCESS, FAILURE, DELAY without repeats. */
function isNotify(v: string): boolean {
  if (v === "NEVER") return true;
  const items = v.split(",");
  const allowed = new Set(["SUCCESS", "FAILURE", "DELAY"]);
  return items.every((i) => allowed.has(i)) && new Set(items).size === items.length;
}
