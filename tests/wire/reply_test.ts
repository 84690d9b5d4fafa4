/**
 * ReplyParser reads reply lines without regular expressions (#13); its answers must be those
 * of the expressions it replaced, written out here as the reference.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import fc from "fast-check";
import { type Reply, type ReplyLineResult, ReplyParser } from "../../src/wire/reply.ts";
import { runs } from "../fuzz/_runs.ts";

const ENHANCED_RE = /^([245])\.(\d{1,3})\.(\d{1,3})(?: +|$)/;

/** The parser as it was: one RegExp for the line, one for the enhanced code. */
class ReferenceParser {
  #code = 0;
  #lines: string[] = [];
  constructor(readonly maxLines: number) {}

  push(line: string): ReplyLineResult {
    const m = /^(\d{3})([ -]?)(.*)$/s.exec(line);
    if (!m) return { kind: "invalid", reason: "reply line without a 3-digit code" };
    const code = Number(m[1]);
    if (code < 200 || code > 599) return { kind: "invalid", reason: `reply code ${code}` };
    if (this.#lines.length > 0 && code !== this.#code) {
      return { kind: "invalid", reason: "reply code changed inside a multi-line reply" };
    }
    this.#code = code;
    this.#lines.push(m[3] ?? "");
    if (this.#lines.length > this.maxLines) {
      return { kind: "invalid", reason: "too many reply lines" };
    }
    if (m[2] === "-") return { kind: "more" };
    const lines = this.#lines;
    this.#lines = [];
    return { kind: "done", reply: referenceSplit(code, lines) };
  }
}

function referenceSplit(code: number, lines: string[]): Reply {
  const m = ENHANCED_RE.exec(lines[0] ?? "");
  if (!m || Number(m[1]) !== Math.floor(code / 100)) return { code, lines };
  const enhanced = `${m[1]}.${m[2]}.${m[3]}`;
  const strip = (l: string) => {
    const mm = ENHANCED_RE.exec(l);
    return mm && `${mm[1]}.${mm[2]}.${mm[3]}` === enhanced ? l.slice(mm[0].length) : l;
  };
  return { code, enhanced, lines: lines.map(strip) };
}

Deno.test("ReplyParser answers as the regular expressions it replaced, line by line (property, #13)", () => {
  // Lines near every edge: codes in and out of range, short lines, both separators and none,
  // enhanced codes with 1-4 digit parts, a class that does not match, tabs, spaces, UTF-8.
  const code = fc.oneof(
    fc.constantFrom(
      "250",
      "451",
      "554",
      "199",
      "600",
      "220",
      "25",
      "2",
      "",
      "25a",
      "०५०",
      ":50",
      "2/0",
    ),
    fc.integer({ min: 0, max: 999 }).map((n) => String(n).padStart(3, "0")),
  );
  const sep = fc.constantFrom(" ", "-", "", "  ", "\t", "x");
  const part = fc.constantFrom("0", "1", "12", "123", "1234", "", "a");
  const enhanced = fc.tuple(fc.constantFrom("2", "4", "5", "3", "x"), part, part)
    .map(([c, s, d]) => `${c}.${s}.${d}`);
  const text = fc.array(fc.constantFrom("ok", " ", "  ", "\t", ".", "é", "2.1.0", "-", ""), {
    maxLength: 4,
  }).map((a) => a.join(""));
  const line = fc.tuple(code, sep, fc.option(enhanced), fc.constantFrom("", " ", "  ", "x"), text)
    .map(([c, s, e, gap, t]) => `${c}${s}${e ?? ""}${gap}${t}`);
  fc.assert(
    fc.property(fc.array(line, { minLength: 1, maxLength: 6 }), (lines) => {
      const parser = new ReplyParser(4);
      const reference = new ReferenceParser(4);
      for (const l of lines) {
        const got = parser.push(l);
        assertEquals(got, reference.push(l));
        if (got.kind === "invalid") break;
      }
    }),
    { numRuns: runs(5000) },
  );
});

Deno.test("ReplyParser: one-line, multi-line and enhanced replies", () => {
  const p = new ReplyParser();
  assertEquals(p.push("250-2.1.0 first"), { kind: "more" });
  assertEquals(p.push("250 2.1.0 second"), {
    kind: "done",
    reply: { code: 250, enhanced: "2.1.0", lines: ["first", "second"] },
  });
  assertEquals(p.push("354 End data with <CR><LF>.<CR><LF>"), {
    kind: "done",
    reply: { code: 354, lines: ["End data with <CR><LF>.<CR><LF>"] },
  });
  assertEquals(p.push("451 5.1.0 class does not match"), {
    kind: "done",
    reply: { code: 451, lines: ["5.1.0 class does not match"] },
  });
  assertEquals(p.push("25"), { kind: "invalid", reason: "reply line without a 3-digit code" });
});
