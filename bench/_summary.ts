// Issue 13's goals (and issue 15's outbound figure) in one table: each benchmark fills the rows it measures (same run, same
// machine), and run.ts prints the table last. A row no selected benchmark measured says so.

import type { Table } from "./_table.ts";

/** The rows, in the order issue 13 lists them, then issue 15's. */
export const SUMMARY_ROWS = {
  tlsDrain: {
    what: "drain: fetch over STARTTLS (fetch.ca), N × 4 KB → smtp-sink, vs Postfix flush",
    goal: "≥ 1.5×",
    bench: "tls",
  },
  plainDrain: { what: "same, plaintext", goal: "≥ 2×", bench: "tls" },
  atrnScale: {
    what: "first MAIL FROM after ATRN, 30 messages, other domains holding many",
    goal: "≤ 20 ms with 1M elsewhere",
    bench: "atrn",
  },
  ingest10x4: { what: "MX ingest s10-4k vs Postfix", goal: "≥ 2×", bench: "ingest" },
  ingest10x100: { what: "MX ingest s10-100k vs Postfix", goal: "≥ 1.5×", bench: "ingest" },
  ingest1x4: { what: "MX ingest s1-4k vs Postfix", goal: "≥ 1.5×", bench: "ingest" },
  ingestLone: {
    what: 'MX ingest, a lone sender (1 connection per 4 KB message): "." → 250 p50 / p99',
    goal: "no group wait (beside Postfix)",
    bench: "ingest",
  },
  serveRss: {
    what: "serve RSS idle / peak while ingesting 50k × 1 KB / 30 s after",
    goal: "≤ 60 / 120 / 100 MB",
    bench: "memory",
  },
  fetchRss: {
    what: "fetch --once peak RSS with one 50 MiB message",
    goal: "≤ 80 MB",
    bench: "ingest",
  },
  provideRss: {
    what: "serve peak RSS (VmHWM) after ingesting and draining that 50 MiB message",
    goal: "≤ 100 MB",
    bench: "ingest",
  },
  outbound: {
    what: "outbound: N × 4 KB submitted, worker → MX (dnsmasq) smtp-sink, vs Postfix",
    goal: "beside Postfix (issue 15)",
    bench: "outbound",
  },
} as const;

/** A row's key. */
export type SummaryKey = keyof typeof SUMMARY_ROWS;

/** What benchmarks found for the summary. */
export class Summary {
  readonly #cells = new Map<SummaryKey, string>();

  /** Records the measured value of one row (the last call wins). */
  set(key: SummaryKey, measured: string): void {
    this.#cells.set(key, measured);
  }

  /** The summary table. */
  table(): Table {
    const rows = Object.entries(SUMMARY_ROWS).map(([key, row]) => [
      row.what,
      this.#cells.get(key as SummaryKey) ?? `not run (bench "${row.bench}")`,
      row.goal,
    ]);
    return {
      title: "Issue 13 goals and issue 15 outbound (this run)",
      headers: ["what", "measured", "goal"],
      rows,
      notes: ["ratios are ours / Postfix's in this run; details in the tables above"],
    };
  }
}
