/**
 * Per-domain policy lookups over a loaded `Config`: a domain's own `domains:` entry wins over
 * the global `queue.*` setting. Pure; shared by the SMTP sink (quota) and queue maintenance
 * (retention).
 */
import type { Config, QuotaLimits } from "./types.ts";

/** Retention of `domain` in milliseconds: its `domains:` entry, else `queue.max_age`. */
export function maxAgeOf(config: Config, domain: string): number {
  return config.domains.get(domain)?.maxAgeMs ?? config.queue.maxAgeMs;
}

/** Quota of `domain`: its `domains:` entry, else `queue.quota`; undefined: no limit. */
export function quotaOf(config: Config, domain: string): QuotaLimits | undefined {
  const entry = config.domains.get(domain);
  return entry === undefined ? config.queue.quota : entry.quota;
}
