/**
 * A strict RFC 5322 §2.2 / §3.6 header-section parser for tests: every line ends in CRLF
 * (no bare CR or LF), no line is over 998 octets (§2.1.1), each line is either
 * `field-name ":"` (field-name = 1*ftext, printable ASCII but ":") or a continuation
 * starting with SP or HTAB (§2.2.3), and the section ends at the first empty line. Stricter
 * than a real MTA on purpose: what passes here is one header block to every reader.
 */

/** One parsed field: its name and its raw (unfolded, CRLF removed) value. */
export interface HeaderField {
  readonly name: string;
  readonly value: string;
}

/** A header section, or the first line that is not one. */
export type HeaderParse =
  | {
    readonly ok: true;
    readonly fields: HeaderField[];
    /** Offset of the first body byte (just past the empty line), or the input length. */
    readonly bodyOffset: number;
    /** An empty line ended the section (false: the input ended first). */
    readonly hasBody: boolean;
  }
  | { readonly ok: false; readonly line: number; readonly why: string };

const CR = 13;
const LF = 10;
/** RFC 5322 §2.1.1: at most 998 characters a line, without the CRLF. */
export const MAX_HEADER_LINE_OCTETS = 998;

const decoder = new TextDecoder("utf-8", { fatal: false });

/** Parses the header section at the start of `bytes` (a whole message or just headers). */
export function parseHeaderSection(bytes: Uint8Array): HeaderParse {
  const fields: { name: string; value: string }[] = [];
  let at = 0;
  let lineNo = 0;
  while (at < bytes.length) {
    lineNo++;
    const lf = bytes.indexOf(LF, at);
    if (lf < 0) return { ok: false, line: lineNo, why: "line without CRLF at end of input" };
    if (lf === at || bytes[lf - 1] !== CR) return { ok: false, line: lineNo, why: "bare LF" };
    const line = bytes.subarray(at, lf - 1);
    if (line.indexOf(CR) >= 0) return { ok: false, line: lineNo, why: "bare CR" };
    if (line.length > MAX_HEADER_LINE_OCTETS) {
      return { ok: false, line: lineNo, why: `line of ${line.length} octets` };
    }
    at = lf + 1;
    if (line.length === 0) return { ok: true, fields, bodyOffset: at, hasBody: true };
    const first = line[0] as number;
    if (first === 0x20 || first === 0x09) {
      const last = fields[fields.length - 1];
      if (last === undefined) return { ok: false, line: lineNo, why: "continuation first" };
      last.value += "\r\n" + decoder.decode(line);
      continue;
    }
    const colon = line.indexOf(0x3a);
    if (colon <= 0) return { ok: false, line: lineNo, why: "neither field nor continuation" };
    for (let i = 0; i < colon; i++) {
      const b = line[i] as number;
      if (b < 33 || b > 126) return { ok: false, line: lineNo, why: "bad field-name octet" };
    }
    fields.push({
      name: decoder.decode(line.subarray(0, colon)),
      value: decoder.decode(line.subarray(colon + 1)),
    });
  }
  return { ok: true, fields, bodyOffset: at, hasBody: false };
}

/** Like `parseHeaderSection`, but throws with the reason and the offending text. */
export function mustParseHeaders(bytes: Uint8Array): Extract<HeaderParse, { ok: true }> {
  const r = parseHeaderSection(bytes);
  if (!r.ok) {
    const text = decoder.decode(bytes.subarray(0, Math.min(bytes.length, 4000)));
    throw new Error(`not a strict RFC 5322 header section: line ${r.line}: ${r.why}\n${text}`);
  }
  return r;
}
