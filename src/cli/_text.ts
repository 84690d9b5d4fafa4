/**
 * Text helpers shared by the `user` and `queue` commands: aligned tables, timestamps, and
 * the scrubbing of stored text (addresses, replies, headers) before it reaches a terminal.
 */

/** Columns padded to the widest cell; `rightAligned` columns (numbers) pad on the left. */
export function formatTable(
  head: readonly string[],
  rows: readonly (readonly string[])[],
  rightAligned: readonly number[] = [],
): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => {
      const width = widths[i] ?? 0;
      if (rightAligned.includes(i)) return c.padStart(width);
      return i === cells.length - 1 ? c : c.padEnd(width);
    }).join("  ").trimEnd() + "\n";
  return line(head) + rows.map(line).join("");
}

/** `2025-01-02T03:04:05Z`: an ISO 8601 instant to the second. */
export function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** An age to the largest whole unit: `42s`, `17m`, `5h`, `3d` (for people, not for parsing). */
export function formatAge(ms: number): string {
  const seconds = Math.max(0, Math.floor(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h`;
  return `${Math.floor(seconds / 86_400)}d`;
}

/** `1 message`, `2 messages`. */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? "" : "s"}`;
}

/**
 * Replaces control characters so stored text cannot drive the operator's terminal: C0 (but
 * TAB), DEL and C1 (U+009B is CSI, U+009D OSC: an SMTPUTF8 address may hold them), and the
 * invisible format and separator characters (U+202E shows an address backwards), as the log
 * escapes them (src/observe/log.ts). Letters of every script stay.
 */
export function safe(text: string): string {
  return text.replace(CONTROL_C0, "?").replace(CONTROL_REST, "?");
}

/**
 * JSON text whose strings hold no raw C1, format or separator character either: each is a
 * `\uXXXX` escape, which any JSON parser reads back as the same character (JSON.stringify
 * already escapes C0), so `--json` output printed on a terminal cannot drive it.
 */
export function jsonText(value: unknown, indent?: number): string {
  return JSON.stringify(value, null, indent).replace(
    CONTROL_REST,
    unicodeEscape,
  );
}

/** `\uXXXX` for each UTF-16 unit of `c` (one beyond U+FFFF is two, the JSON way). */
function unicodeEscape(c: string): string {
  let out = "";
  for (let i = 0; i < c.length; i++) out += `\\u${c.charCodeAt(i).toString(16).padStart(4, "0")}`;
  return out;
}

// deno-lint-ignore no-control-regex -- control characters are exactly what must go
const CONTROL_C0 = /[\x00-\x08\x0a-\x1f]/g;
/** DEL, C1, and non-ASCII format (bidi, zero-width, tags) and separator characters. */
// deno-lint-ignore no-control-regex -- control characters are exactly what must go
const CONTROL_REST = /[\x7f-\x9f]|(?![\x00-\x7f])[\p{Cf}\p{Zl}\p{Zp}]/gu;
