/**
 * ESMTP parameters after the path of MAIL and RCPT (`keyword[=value]` separated by SP,
 * RFC 5321 §4.1.2): SIZE (RFC 1870), BODY (RFC 6152/3030), SMTPUTF8 (RFC 6531), RET/ENVID/
 * NOTIFY/ORCPT (RFC 3461; a utf-8 ORCPT as RFC 6533 §3) and AUTH (RFC 4954, accepted and
 * ignored). Pure; never throws.
 */
import { parseRcptArgument } from "./address.ts";

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
  /**
   * `addr-type;xtext` as received; a utf-8 one (RFC 6533 §3) in its 7-bit utf-8-addr-xtext
   * form, whichever form it came in.
   */
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
        if (!/^[A-Za-z0-9-]+$/.test(addrType) || addr === "") return bad;
        if (addrType.toLowerCase() === "utf-8") {
          const address = decodeUtf8Addr(addr);
          if (address === undefined) return bad;
          out.orcpt = `${addrType};${utf8AddrXtext(address)}`;
        } else {
          if (!isPrintableXtext(addr)) return bad;
          out.orcpt = value;
        }
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

// RFC 6533 §3: EmbeddedUnicodeChar `\x{HEXPOINT}`, HEXPOINT the shortest form of an xtext-special
// or a non-ASCII code point (no surrogates); QCHAR the printable ASCII but "+", "=", "\\".
const HEXPOINT_RE =
  /^(?:0[1-9]|1[0-9]|20|2B|3D|5C|7F|[89A-F][0-9A-F]|[1-9A-F][0-9A-F]{2}|[1-9A-CE-F][0-9A-F]{3}|D[0-7][0-9A-F]{2}|[1-9A-F][0-9A-F]{4}|10[0-9A-F]{4})$/i;
const QCHAR_RE = /^[\x21-\x2a\x2c-\x3c\x3e-\x5b\x5d-\x7e]$/;

/**
 * The address a utf-8 ORCPT value encodes (RFC 6533 §3 utf-8-addr-xtext or, its UTF-8 kept,
 * utf-8-addr-unitext), or undefined when it is neither or, dequoted, no Mailbox (RFC 6531):
 * the path limits of RCPT (local part 64 octets, path 256) are its length caps.
 */
export function decodeUtf8Addr(value: string): string | undefined {
  let address = "";
  for (let i = 0; i < value.length;) {
    const cp = value.codePointAt(i) as number;
    if (cp === 0x5c) {
      const m = /^\\x\{([0-9A-Fa-f]{1,6})\}/.exec(value.slice(i, i + 10));
      if (m === null || !HEXPOINT_RE.test(m[1] as string)) return undefined;
      address += String.fromCodePoint(parseInt(m[1] as string, 16));
      i += m[0].length;
      continue;
    }
    const ch = String.fromCodePoint(cp);
    // QUCHAR: UTF8-2 / UTF8-3 / UTF8-4, which a lone surrogate is not.
    if (!QCHAR_RE.test(ch) && (cp < 0x80 || (cp >= 0xd800 && cp <= 0xdfff))) return undefined;
    address += ch;
    i += ch.length;
  }
  const path = parseRcptArgument(`TO:<${address}>`);
  const isMailbox = path.ok && path.params === "" && path.mailbox.domain !== "" &&
    !address.startsWith("@");
  return isMailbox ? address : undefined;
}

/**
 * `address` as RFC 6533 §3 utf-8-addr-xtext: each character outside QCHAR (non-ASCII, SP, "+",
 * "=", "\\") written `\x{HEX}`; a control, which no Mailbox holds, becomes `?`.
 */
export function utf8AddrXtext(address: string): string {
  let out = "";
  for (const ch of address) {
    const cp = ch.codePointAt(0) as number;
    if (cp >= 0x21 && cp <= 0x7e && ch !== "+" && ch !== "=" && ch !== "\\") {
      out += ch;
    } else if (cp >= 0x80 || cp === 0x20 || ch === "+" || ch === "=" || ch === "\\") {
      out += `\\x{${cp.toString(16).toUpperCase()}}`;
    } else {
      out += "?";
    }
  }
  return out;
}
