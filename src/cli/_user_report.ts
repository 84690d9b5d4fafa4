/**
 * What `user list` and `user show` print per user: its domains, the mail waiting for them
 * (messages, bytes, the oldest) and its last successful collection (ATRN). JSON keys are
 * snake_case; instants are ISO 8601, `null` when there is none.
 */
import type { UserEntry } from "../auth/store.ts";
import type { QueueAdmin, WaitingTotals } from "../queue/admin.ts";
import { formatAge, formatTable, isoSeconds, plural, safe } from "./_text.ts";

/** One user with its figures. */
export interface UserReport {
  readonly name: string;
  readonly domains: readonly string[];
  readonly waiting: WaitingTotals;
  /** Per domain (only gathered for `user show`). */
  readonly byDomain: readonly { readonly domain: string; readonly waiting: WaitingTotals }[];
  /** Milliseconds since the epoch; undefined: never collected (since this data_dir exists). */
  readonly lastCollectionAt: number | undefined;
  /** SHA-256 fingerprints pinned for AUTH EXTERNAL (`user certs`), sorted. */
  readonly certificates: readonly string[];
}

/** Gathers the figures of `users` (per domain too when `perDomain`). */
export async function gatherReports(
  admin: QueueAdmin,
  users: readonly UserEntry[],
  opts: { perDomain: boolean; certificatesOf?: (user: string) => readonly string[] },
): Promise<UserReport[]> {
  const collections = await admin.lastCollections();
  const out: UserReport[] = [];
  for (const u of users) {
    const byDomain = [];
    if (opts.perDomain) {
      for (const domain of u.domains) {
        byDomain.push({ domain, waiting: await admin.waiting([domain]) });
      }
    }
    out.push({
      name: u.name,
      domains: u.domains,
      waiting: await admin.waiting(u.domains),
      byDomain,
      lastCollectionAt: collections.get(u.name),
      certificates: opts.certificatesOf?.(u.name) ?? [],
    });
  }
  return out;
}

/** `user list --json` entry (README.md "Users": name and domains first). */
export function userJson(r: UserReport): Record<string, unknown> {
  return {
    name: r.name,
    domains: [...r.domains],
    ...waitingJson(r.waiting),
    last_collection_at: instant(r.lastCollectionAt),
    certificates: [...r.certificates],
  };
}

/** `user show --json`: the list entry plus the figures per domain. */
export function userDetailJson(r: UserReport): Record<string, unknown> {
  return {
    ...userJson(r),
    waiting_by_domain: r.byDomain.map((d) => ({ domain: d.domain, ...waitingJson(d.waiting) })),
  };
}

/** `user list` as a table. */
export function renderUserTable(reports: readonly UserReport[], nowMs: number): string {
  if (reports.length === 0) return 'No users: add one with "user add NAME --domain D"\n';
  const rows = reports.map((r) => [
    r.name,
    r.domains.length === 0 ? "-" : r.domains.join(","),
    String(r.waiting.messages),
    String(r.waiting.bytes),
    r.waiting.oldestReceivedAt === undefined ? "-" : formatAge(nowMs - r.waiting.oldestReceivedAt),
    r.lastCollectionAt === undefined ? "never" : `${formatAge(nowMs - r.lastCollectionAt)} ago`,
  ]);
  return formatTable(
    ["NAME", "DOMAINS", "WAITING", "BYTES", "OLDEST", "LAST COLLECTION"],
    rows,
    [2, 3],
  );
}

/** `user show` as text. */
export function renderUserText(r: UserReport, nowMs: number): string {
  const when = (ms: number | undefined, none: string) =>
    ms === undefined ? none : `${isoSeconds(ms)} (${formatAge(nowMs - ms)} ago)`;
  const lines = [
    `User:             ${safe(r.name)}`,
    `Domains:          ${r.domains.length === 0 ? "none" : r.domains.join(", ")}`,
    `Waiting:          ${plural(r.waiting.messages, "message")}, ${r.waiting.bytes} bytes`,
    `Oldest waiting:   ${when(r.waiting.oldestReceivedAt, "-")}`,
    `Last collection:  ${when(r.lastCollectionAt, "never")}`,
  ];
  if (r.byDomain.length > 0) {
    lines.push("Per domain:");
    const width = Math.max(...r.byDomain.map((d) => d.domain.length));
    for (const d of r.byDomain) {
      let line = `  ${d.domain.padEnd(width)}  ${plural(d.waiting.messages, "message")}, ` +
        `${d.waiting.bytes} bytes`;
      if (d.waiting.oldestReceivedAt !== undefined) {
        line += `, oldest ${formatAge(nowMs - d.waiting.oldestReceivedAt)} old`;
      }
      lines.push(line);
    }
  }
  return lines.join("\n") + "\n";
}

function waitingJson(w: WaitingTotals): Record<string, unknown> {
  return {
    waiting_messages: w.messages,
    waiting_bytes: w.bytes,
    oldest_waiting_at: instant(w.oldestReceivedAt),
  };
}

function instant(ms: number | undefined): string | null {
  return ms === undefined ? null : new Date(ms).toISOString();
}
