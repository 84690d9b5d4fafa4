/**
 * Case counts for property tests: a few thousand in `deno task test` (bounded time), many
 * more with `FUZZ_RUNS=N` (what `deno task fuzz` sets). Seeds are printed by fast-check on a
 * failure, so every counterexample can be replayed.
 */

/** `n` cases by default; `FUZZ_RUNS` scales every property of the suite. */
export function runs(n: number): number {
  const env = Deno.env.get("FUZZ_RUNS");
  const given = env === undefined ? NaN : Number(env);
  return Number.isFinite(given) && given > 0 ? Math.max(n, Math.floor(given)) : n;
}

/** Splits `bytes` at the given cut points (any order, duplicates and out-of-range ignored). */
export function splitAt(bytes: Uint8Array, cuts: readonly number[]): Uint8Array[] {
  const points = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((a, b) => a - b);
  const out: Uint8Array[] = [];
  let from = 0;
  for (const p of points) {
    if (p > from) out.push(bytes.slice(from, p));
    from = Math.max(from, p);
  }
  if (from < bytes.length) out.push(bytes.slice(from));
  return out;
}
