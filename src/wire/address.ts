/**
 * Parses the argument of MAIL (`FROM:<path> params`) and RCPT (`TO:<path> params`) per
 * RFC 5321 §4.1.2: source routes accepted and dropped, quoted local parts kept as received,
 * domains normalised to lower-case A-labels, address literals kept as literals.
 * Pure; limits are arguments; hostile input is a `{ ok: false }` result.
 */
import { domainToAscii } from "./idna.ts";

/** Size limits in octets (RFC 5321 §4.5.3.1). */
export interface PathLimits {
  readonly maxLocalPartBytes: number;
  readonly maxDomainBytes: number;
  /** The path including its angle brackets. */
  readonly maxPathBytes: number;
}

/** The RFC 5321 minimums, which are also our maximums. */
export const DEFAULT_PATH_LIMITS: PathLimits = {
  maxLocalPartBytes: 64,
  maxDomainBytes: 255,
  maxPathBytes: 256,
};

/** A parsed mailbox. */
export interface Mailbox {
  /** `local@domain` with the normalised domain; "" for `<>`; "Postmaster" for `<Postmaster>`. */
  readonly address: string;
  /** As received (quotes included). */
  readonly localPart: string;
  /** Lower-case A-label, or the literal (`[192.0.2.1]`); "" for `<>` and `<Postmaster>`. */
  readonly domain: string;
  readonly isLiteral: boolean;
  /** True when the local part or the domain as received held non-ASCII characters. */
  readonly isUtf8: boolean;
}

/** Why a path was refused. */
export type PathFault =
  | "syntax"
  | "nullNotAllowed"
  | "localPartTooLong"
  | "domainTooLong"
  | "pathTooLong"
  | "badDomain";

/** A parsed MAIL or RCPT argument: the mailbox and the parameter text after it. */
export type PathParse =
  | { readonly ok: true; readonly mailbox: Mailbox; readonly params: string }
  | { readonly ok: false; readonly fault: PathFault };

/** Parses `FROM:<reverse-path> [params]`; `<>` is allowed. */
export function parseMailArgument(args: string, limits = DEFAULT_PATH_LIMITS): PathParse {
  return parsePathArgument(args, "FROM:", true, limits);
}

/** Parses `TO:<forward-path> [params]`; `<Postmaster>` (no domain) is allowed. */
export function parseRcptArgument(args: string, limits = DEFAULT_PATH_LIMITS): PathParse {
  return parsePathArgument(args, "TO:", false, limits);
}

function parsePathArgument(
  args: string,
  keyword: string,
  isMail: boolean,
  limits: PathLimits,
): PathParse {
  if (args.slice(0, keyword.length).toUpperCase() !== keyword) return fail("syntax");
  let rest = args.slice(keyword.length);
  // The grammar has no space after the colon; tolerate exactly one (docs/protocol.md §4.1).
  if (rest.startsWith(" ")) rest = rest.slice(1);
  if (!rest.startsWith("<")) return fail("syntax");
  const close = findPathEnd(rest);
  if (close < 0) return fail("syntax");
  const path = rest.slice(0, close + 1);
  const after = rest.slice(close + 1);
  if (after !== "" && !after.startsWith(" ")) return fail("syntax");
  const params = after.replace(/^ +/, "");
  if (utf8Length(path) > limits.maxPathBytes) return fail("pathTooLong");
  const inner = path.slice(1, -1);
  if (inner === "") {
    if (!isMail) return fail("nullNotAllowed");
    return ok(
      { address: "", localPart: "", domain: "", isLiteral: false, isUtf8: false },
      params,
    );
  }
  if (!isMail && inner.toLowerCase() === "postmaster") {
    const mailbox = { address: inner, localPart: inner, domain: "", isLiteral: false };
    return ok({ ...mailbox, isUtf8: false }, params);
  }
  const mailbox = parseMailbox(stripSourceRoute(inner), limits);
  return mailbox.ok ? ok(mailbox.mailbox, params) : mailbox;
}

/** Index of the `>` closing the path, skipping quoted strings; -1 when there is none. */
function findPathEnd(s: string): number {
  let quoted = false;
  for (let i = 1; i < s.length; i++) {
    const c = s[i];
    if (quoted) {
      if (c === "\\") i++;
      else if (c === '"') quoted = false;
    } else if (c === '"') {
      quoted = true;
    } else if (c === ">") {
      return i;
    } else if (c === "<") {
      return -1;
    }
  }
  return -1;
}

/** `@a,@b:user@c` → `user@c`. The route is ignored (RFC 5321 §4.1.1.3, appendix C). */
function stripSourceRoute(inner: string): string {
  if (!inner.startsWith("@")) return inner;
  const colon = inner.indexOf(":");
  if (colon < 0) return inner; // not a route: fails as a mailbox below
  const route = inner.slice(0, colon).split(",");
  for (const hop of route) {
    if (!hop.startsWith("@") || parseDomain(hop.slice(1)) === undefined) return "\0";
  }
  return inner.slice(colon + 1);
}

/** Parses `local-part@domain` as it sits between the brackets (route removed). */
export function parseMailbox(
  text: string,
  limits = DEFAULT_PATH_LIMITS,
): { ok: true; mailbox: Mailbox } | { ok: false; fault: PathFault } {
  const local = scanLocalPart(text);
  if (local === undefined) return fail("syntax");
  const localPart = text.slice(0, local);
  if (text[local] !== "@") return fail("syntax");
  const domainText = text.slice(local + 1);
  if (utf8Length(localPart) > limits.maxLocalPartBytes) {
    return fail("localPartTooLong");
  }
  if (utf8Length(domainText) > limits.maxDomainBytes) return fail("domainTooLong");
  const isUtf8 = hasNonAscii(text);
  if (domainText.startsWith("[")) {
    const literal = parseAddressLiteral(domainText);
    if (literal === undefined) return fail("badDomain");
    return {
      ok: true,
      mailbox: {
        address: `${localPart}@${literal}`,
        localPart,
        domain: literal,
        isLiteral: true,
        isUtf8,
      },
    };
  }
  const domain = parseDomain(domainText);
  if (domain === undefined) return fail("badDomain");
  if (domain.length > limits.maxDomainBytes) return fail("domainTooLong");
  return {
    ok: true,
    mailbox: { address: `${localPart}@${domain}`, localPart, domain, isLiteral: false, isUtf8 },
  };
}

/**
 * atext (RFC 5322 §3.2.3) among ASCII, by character code; every non-ASCII character is allowed
 * too (UTF-8, RFC 6531 §3.3), and the caller decides whether UTF-8 is.
 */
const ASCII_ATEXT = new Uint8Array(128);
for (const c of "!#$%&'*+-/=?^_`{|}~0123456789") ASCII_ATEXT[c.charCodeAt(0)] = 1;
for (let c = 0x41; c <= 0x5a; c++) ASCII_ATEXT[c] = ASCII_ATEXT[c + 0x20] = 1;

/** Octets of `s` in UTF-8, as TextEncoder writes it (a lone surrogate as U+FFFD), not encoding it. */
function utf8Length(s: string): number {
  let octets = s.length;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) continue;
    if (c < 0x800) {
      octets += 1;
    } else if (c >= 0xd800 && c <= 0xdbff && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      octets += 2; // a pair: two units, four octets
      i++;
    } else {
      octets += 2;
    }
  }
  return octets;
}

/** Length of a valid Dot-string or Quoted-string at the start of `s`; undefined if invalid. */
function scanLocalPart(s: string): number | undefined {
  if (s.startsWith('"')) {
    let i = 1;
    while (i < s.length) {
      const c = s.charCodeAt(i);
      if (c === 0x22) return i + 1;
      if (c === 0x5c) {
        const n = s.charCodeAt(i + 1);
        if (!(n >= 0x20 && n <= 0x7e)) return undefined; // quoted-pairSMTP
        i += 2;
        continue;
      }
      // qtextSMTP: %d32-33 / %d35-91 / %d93-126, or UTF-8
      if (c < 0x20 || c === 0x7f) return undefined;
      i++;
    }
    return undefined;
  }
  let i = 0;
  let atomLength = 0;
  for (; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x40) break; // "@"
    if (c === 0x2e) { // "."
      if (atomLength === 0) return undefined;
      atomLength = 0;
    } else if (c >= 0x80 || ASCII_ATEXT[c] === 1) {
      atomLength++;
    } else {
      return undefined;
    }
  }
  return atomLength === 0 ? undefined : i;
}

const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/**
 * Normalises a domain to its lower-case A-label, stripping one trailing dot; undefined when it
 * is not a valid host name.
 */
export function parseDomain(text: string): string | undefined {
  const bare = text.endsWith(".") ? text.slice(0, -1) : text;
  if (bare === "") return undefined;
  const ascii = plainAsciiHost(bare) ?? idnToAscii(bare);
  if (ascii === undefined) return undefined;
  if (ascii === "" || ascii.length > 255) return undefined;
  const labels = ascii.split(".");
  for (const label of labels) if (!LABEL_RE.test(label)) return undefined;
  // An all-numeric top label is an IP address written without brackets, not a domain.
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? "")) return undefined;
  return ascii;
}

/**
 * The lower-case form of a name written only in ASCII letters, digits, "." and "-", which is
 * what domainToASCII returns for it (UTS #46 maps those by lower-casing) without the IDNA call;
 * undefined for anything else, and for any "xn--" label, whose Punycode domainToASCII checks.
 */
function plainAsciiHost(s: string): string | undefined {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    const letter = (c | 0x20) >= 0x61 && (c | 0x20) <= 0x7a && c < 0x80; // A-Z, a-z
    if (!(letter || (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x2d)) return undefined;
  }
  const lower = s.toLowerCase();
  return lower.includes("xn--") ? undefined : lower;
}

/** domainToASCII for a name of letters, marks, digits, "." and "-"; undefined otherwise. */
function idnToAscii(s: string): string | undefined {
  if (/[^\p{L}\p{M}\p{N}.-]/u.test(s)) return undefined;
  return domainToAscii(s);
}

const IPV4_RE = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** `[192.0.2.1]`, `[IPv6:…]` or a general literal `[tag:text]`; lower-cased; undefined if bad. */
export function parseAddressLiteral(text: string): string | undefined {
  if (!text.startsWith("[") || !text.endsWith("]")) return undefined;
  const inner = text.slice(1, -1);
  if (IPV4_RE.test(inner)) return `[${inner}]`;
  const colon = inner.indexOf(":");
  if (colon <= 0) return undefined;
  const tag = inner.slice(0, colon);
  const value = inner.slice(colon + 1);
  if (!/^[A-Za-z0-9-]*[A-Za-z0-9]$/.test(tag)) return undefined;
  // dcontent: %d33-90 / %d94-126
  if (value === "" || !/^[\x21-\x5a\x5e-\x7e]+$/.test(value)) return undefined;
  if (tag.toLowerCase() === "ipv6" && !/^[0-9a-fA-F:.]+$/.test(value)) return undefined;
  return `[${tag.toLowerCase() === "ipv6" ? "IPv6" : tag}:${value.toLowerCase()}]`;
}

function hasNonAscii(s: string): boolean {
  // deno-lint-ignore no-control-regex -- the ASCII range is exactly what is tested
  return /[^\x00-\x7f]/.test(s);
}

function ok(mailbox: Mailbox, params: string): PathParse {
  return { ok: true, mailbox, params };
}

function fail(fault: PathFault): { ok: false; fault: PathFault } {
  return { ok: false, fault };
}
