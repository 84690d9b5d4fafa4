// Plain-text tables for benchmark results, plus the number formats they use.

/** A table: a title, column headers, rows of cells, and notes printed under it. */
export interface Table {
  readonly title: string;
  readonly headers: readonly string[];
  readonly rows: string[][];
  readonly notes: string[];
}

/** Renders a table as Markdown-compatible pipe rows (readable as plain text too). */
export function renderTable(t: Table): string {
  const widths = t.headers.map((h, i) =>
    Math.max(h.length, ...t.rows.map((r) => (r[i] ?? "").length))
  );
  const line = (cells: readonly string[]) =>
    "| " + widths.map((w, i) => (cells[i] ?? "").padEnd(w)).join(" | ") + " |";
  const out = [
    `## ${t.title}`,
    "",
    line(t.headers),
    "|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|",
  ];
  for (const r of t.rows) out.push(line(r));
  if (t.notes.length > 0) out.push("", ...t.notes.map((n) => `- ${n}`));
  return out.join("\n") + "\n";
}

/** Messages per second with sensible precision. */
export function fmtRate(n: number): string {
  return n >= 100 ? n.toFixed(0) : n >= 10 ? n.toFixed(1) : n.toFixed(2);
}

/** A ratio like `1.23×`. */
export function fmtRatio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || b === 0) return "n/a";
  return `${a / b >= 10 ? (a / b).toFixed(1) : (a / b).toFixed(2)}×`;
}

/** Bytes as MB (10^6), e.g. `51.2 MB`. */
export function fmtMb(bytes: number): string {
  return `${(bytes / 1e6).toFixed(1)} MB`;
}

/** A failure as a table cell: `n/a (reason)`, reason shortened to one line. */
export function naCell(reason: unknown): string {
  const text = reason instanceof Error ? reason.message : String(reason);
  const one = text.replace(/\s+/g, " ").trim();
  return `n/a (${one.length > 90 ? one.slice(0, 87) + "..." : one})`;
}
