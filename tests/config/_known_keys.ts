/**
 * Every key path the config loader accepts, from the loader's own lists of known keys
 * (sections replaced by their keys; per-domain entries and listen entries are named by their
 * section): what README.md's config table and config.example.yaml must both show.
 */
import {
  LOG_KEYS,
  METRICS_KEYS,
  ODMR_KEYS,
  POSTGRES_KEYS,
  QUEUE_KEYS,
  SMTP_KEYS,
  TLS_KEYS,
  TOP_KEYS,
} from "../../src/config/_validator.ts";
import { OUTBOUND_KEYS, SUBMISSION_KEYS } from "../../src/config/_outbound.ts";
import { FETCH_KEYS } from "../../src/config/_fetch.ts";

const SECTIONS: Record<string, readonly string[]> = {
  log: LOG_KEYS,
  tls: TLS_KEYS,
  smtp: SMTP_KEYS,
  odmr: ODMR_KEYS,
  queue: QUEUE_KEYS,
  "queue.postgres": POSTGRES_KEYS,
  metrics: METRICS_KEYS,
  submission: SUBMISSION_KEYS,
  outbound: OUTBOUND_KEYS,
  fetch: FETCH_KEYS,
};

/** Every key path the loader knows, sections replaced by their keys. */
export function knownKeys(): string[] {
  const out: string[] = [];
  const walk = (prefix: string, keys: readonly string[]) => {
    for (const k of keys) {
      const path = prefix === "" ? k : `${prefix}.${k}`;
      const inner = SECTIONS[path];
      if (inner === undefined) out.push(path);
      else walk(path, inner);
    }
  };
  walk("", TOP_KEYS);
  return out;
}
