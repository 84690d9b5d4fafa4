/**
 * `queue summary [--json]`: waiting recipients per domain in age columns, the way Postfix's
 * `qshape` shows its queues (a TOTAL row first, then domains by count, largest first).
 */
import { AGE_BUCKETS, type DomainAges } from "../queue/admin.ts";
import { formatTable, safe } from "./_text.ts";

/** The summary as text (a table) or JSON (`{buckets, total, domains}`). */
export function renderSummary(rows: readonly DomainAges[], isJson: boolean): string {
  const sorted = [...rows].sort((a, b) =>
    b.recipients - a.recipients || (a.domain < b.domain ? -1 : a.domain > b.domain ? 1 : 0)
  );
  const total = AGE_BUCKETS.map((_, i) => sorted.reduce((n, r) => n + (r.counts[i] ?? 0), 0));
  const totalRecipients = total.reduce((a, b) => a + b, 0);
  if (isJson) {
    const out = {
      buckets: AGE_BUCKETS.map((b) => ({
        label: b.label,
        max_age_seconds: b.maxAgeSeconds ?? null,
      })),
      total: { recipients: totalRecipients, counts: total },
      domains: sorted.map((r) => ({
        domain: r.domain,
        recipients: r.recipients,
        counts: [...r.counts],
      })),
    };
    return JSON.stringify(out, null, 2) + "\n";
  }
  const head = ["DOMAIN", "T", ...AGE_BUCKETS.map((b) => b.label)];
  const body = [
    ["TOTAL", String(totalRecipients), ...total.map(String)],
    ...sorted.map((r) => [safe(r.domain), String(r.recipients), ...r.counts.map(String)]),
  ];
  const numeric = head.map((_, i) => i).filter((i) => i > 0);
  return formatTable(head, body, numeric);
}
