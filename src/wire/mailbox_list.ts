/**
 * The addresses of a `From:` field's mailbox-list (RFC 5322 §3.4, §3.6.2), and nothing else:
 * a display name and comments are skipped, so an address written inside them never counts. Pure
 * and strict: a group, a source route, a domain literal, an unclosed quote, comment or angle
 * bracket, or anything left over makes the whole field unreadable (undefined), never a guess.
 * Non-ASCII text is taken as atext (RFC 6532). Obsolete forms a reader accepts are read too:
 * CFWS around dots, empty list elements, a phrase with dots (RFC 5322 §4.1, §4.4).
 */

/** One mailbox's addr-spec: its local part as written and its domain (not normalised). */
export interface AddrSpec {
  readonly localPart: string;
  readonly domain: string;
}

type Token =
  | { readonly kind: "atom"; readonly text: string }
  | { readonly kind: "quoted"; readonly text: string }
  | { readonly kind: "special"; readonly text: string };

/** atext among ASCII (RFC 5322 §3.2.3); every non-ASCII character is atext too (RFC 6532). */
const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10ffff}]$/u;
const SPECIALS = "<>@,;:.[]";

/** The mailboxes' addr-specs in order; undefined when the value is no mailbox-list. */
export function mailboxListAddresses(value: string): AddrSpec[] | undefined {
  const tokens = tokenize(value.replace(/\r?\n(?=[ \t])/g, ""));
  if (tokens === undefined) return undefined;
  const out: AddrSpec[] = [];
  let start = 0;
  for (let i = 0; i <= tokens.length; i++) {
    const t = tokens[i];
    if (t !== undefined && !(t.kind === "special" && t.text === ",")) continue;
    // Commas inside an angle-addr would be a route (refused in `mailbox`); inside quotes or a
    // comment they are no tokens of their own.
    const element = tokens.slice(start, i);
    start = i + 1;
    if (element.length === 0) continue; // obs-mbox-list: an empty element
    const spec = mailbox(element);
    if (spec === undefined) return undefined;
    out.push(spec);
  }
  return out;
}

/** name-addr (`[phrase] < addr-spec >`) or a bare addr-spec. */
function mailbox(tokens: readonly Token[]): AddrSpec | undefined {
  const open = tokens.findIndex((t) => t.kind === "special" && t.text === "<");
  if (open < 0) return addrSpec(tokens);
  const close = tokens.length - 1;
  if (!isSpecial(tokens[close], ">")) return undefined;
  // The phrase: words, and dots (obs-phrase); no other special.
  for (let i = 0; i < open; i++) {
    const t = tokens[i]!;
    if (t.kind === "special" && t.text !== ".") return undefined;
    if (t.kind === "special" && i === 0) return undefined;
  }
  return addrSpec(tokens.slice(open + 1, close));
}

/** local-part "@" domain: a dot-atom or quoted-string (obs: words and dots), then a dot-atom. */
function addrSpec(tokens: readonly Token[]): AddrSpec | undefined {
  const at = tokens.findIndex((t) => t.kind === "special" && t.text === "@");
  if (at <= 0) return undefined;
  const localPart = dotted(tokens.slice(0, at), true);
  // A root dot (`example.org.`) is kept for the caller's normalisation, which drops one.
  const after = tokens.slice(at + 1);
  const isRooted = after.length > 1 && isSpecial(after[after.length - 1], ".");
  const domain = dotted(isRooted ? after.slice(0, -1) : after, false);
  if (localPart === undefined || domain === undefined) return undefined;
  return { localPart, domain: isRooted ? `${domain}.` : domain };
}

/** word *("." word) as one string (quoted words kept quoted); undefined for anything else. */
function dotted(tokens: readonly Token[], mayQuote: boolean): string | undefined {
  if (tokens.length === 0 || tokens.length % 2 === 0) return undefined;
  let text = "";
  for (let i = 0; i < tokens.length; i++) {
    const t = tokens[i]!;
    if (i % 2 === 1) {
      if (!isSpecial(t, ".")) return undefined;
      text += ".";
    } else if (t.kind === "atom") {
      text += t.text;
    } else if (t.kind === "quoted" && mayQuote) {
      text += `"${t.text}"`;
    } else {
      return undefined;
    }
  }
  return text;
}

function isSpecial(t: Token | undefined, text: string): boolean {
  return t !== undefined && t.kind === "special" && t.text === text;
}

/** Atoms, quoted strings and specials; CFWS dropped. Undefined on what RFC 5322 does not allow. */
function tokenize(s: string): Token[] | undefined {
  const out: Token[] = [];
  const chars = [...s];
  let i = 0;
  while (i < chars.length) {
    const c = chars[i]!;
    if (c === " " || c === "\t" || c === "\r" || c === "\n") {
      // WSP, and the CRLF that ends the field (folding was undone before).
      i++;
    } else if (c === "(") {
      const end = skipComment(chars, i);
      if (end === undefined) return undefined;
      i = end;
    } else if (c === '"') {
      let text = "";
      i++;
      for (;;) {
        const q = chars[i];
        if (q === undefined) return undefined;
        i++;
        if (q === '"') break;
        if (q === "\\") {
          const n = chars[i];
          if (n === undefined) return undefined;
          text += n;
          i++;
        } else if (q === "\r" || q === "\n") {
          return undefined;
        } else {
          text += q;
        }
      }
      out.push({ kind: "quoted", text });
    } else if (SPECIALS.includes(c)) {
      out.push({ kind: "special", text: c });
      i++;
    } else if (ATEXT.test(c)) {
      let text = "";
      while (i < chars.length && ATEXT.test(chars[i]!)) text += chars[i++];
      out.push({ kind: "atom", text });
    } else {
      return undefined;
    }
  }
  return out;
}

/** The index after the comment opening at `i` (nested, with quoted-pairs); undefined if unclosed. */
function skipComment(chars: readonly string[], i: number): number | undefined {
  let depth = 0;
  while (i < chars.length) {
    const c = chars[i]!;
    i++;
    if (c === "\\") {
      i++;
    } else if (c === "(") {
      depth++;
    } else if (c === ")") {
      depth--;
      if (depth === 0) return i;
    }
  }
  return undefined;
}
