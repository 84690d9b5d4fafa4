/**
 * One page of a keyset walk over several sorted id streams (a domain's recipients per status
 * in the (domain, status, message_id) index): the smallest ids of their union, each once, and
 * whether the walk is over. Pure; what makes a claim cost grow with the claimed domains' own
 * mail and never with the rest of the queue.
 */

/** The merged page, ascending and without duplicates. */
export interface MergedPage {
  readonly ids: string[];
  /** True when no stream can hold an id after the last one of `ids`. */
  readonly isLast: boolean;
}

/**
 * Merges `streams` — each the first `pageSize` ids (ascending) after the same cursor in one
 * stream — into the next `pageSize` ids. A full stream may hold ids beyond its last one
 * fetched, so ids above the smallest such "last" are left for the next page.
 */
export function mergePage(streams: readonly (readonly string[])[], pageSize: number): MergedPage {
  let bound: string | undefined;
  for (const s of streams) {
    if (s.length < pageSize) continue;
    const last = s[s.length - 1];
    if (last !== undefined && (bound === undefined || last < bound)) bound = last;
  }
  const all = new Set<string>();
  for (const s of streams) {
    for (const id of s) if (bound === undefined || id <= bound) all.add(id);
  }
  const ids = [...all].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  if (ids.length > pageSize) return { ids: ids.slice(0, pageSize), isLast: false };
  return { ids, isLast: bound === undefined };
}
