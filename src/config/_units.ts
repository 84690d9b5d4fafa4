/**
 * Parses the human units of the config file: durations (`30s`, `5m`, `2h`, `30d`, `250ms`)
 * and sizes (bytes, `512KB`, `50MB`, `1GB`; binary multiples, 1 KB = 1024 bytes).
 * Pure; returns `undefined` for anything it does not accept.
 */

const DURATION_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

/** Size multipliers. Binary, as most mail software means by "MB" (documented in the README). */
const SIZE_BYTES: Record<string, number> = {
  "": 1,
  b: 1,
  kb: 1024,
  kib: 1024,
  k: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  m: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
  g: 1024 ** 3,
};

/** `30s` → 30000 (milliseconds); `undefined` when not a duration. */
export function parseDurationMs(value: unknown): number | undefined {
  if (typeof value !== "string") return undefined;
  const m = /^\s*(\d+)\s*(ms|s|m|h|d)\s*$/.exec(value);
  if (!m) return undefined;
  const unit = DURATION_MS[m[2] as string];
  if (unit === undefined) return undefined;
  const ms = Number(m[1]) * unit;
  return Number.isSafeInteger(ms) ? ms : undefined;
}

/** `50MB` → 52428800; a plain integer is bytes; `undefined` when not a size. */
export function parseSizeBytes(value: unknown): number | undefined {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  }
  if (typeof value !== "string") return undefined;
  const m = /^\s*(\d+)\s*([a-zA-Z]*)\s*$/.exec(value);
  if (!m) return undefined;
  const unit = SIZE_BYTES[(m[2] as string).toLowerCase()];
  if (unit === undefined) return undefined;
  const bytes = Number(m[1]) * unit;
  return Number.isSafeInteger(bytes) ? bytes : undefined;
}

/** 30000 → `30s`: the shortest exact spelling, for `check-config`. */
export function formatDuration(ms: number): string {
  for (const unit of ["d", "h", "m", "s"] as const) {
    const size = DURATION_MS[unit] as number;
    if (ms > 0 && ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

/** 52428800 → `50MB`: exact binary multiples only, else bytes. */
export function formatSize(bytes: number): string {
  for (const [unit, size] of [["GB", 1024 ** 3], ["MB", 1024 ** 2], ["KB", 1024]] as const) {
    if (bytes > 0 && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}
