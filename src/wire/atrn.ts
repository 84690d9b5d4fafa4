/**
 * ATRN argument parsing (RFC 2645 §5.2.1): an optional comma-separated list of domains.
 * Liberal in what it takes (docs/protocol.md §1.3 project choice): items are trimmed and
 * lower-cased, duplicates dropped; empty items, non-LDH labels, single labels, address
 * literals and trailing dots are refused. Pure.
 */

/** Most domains one ATRN may name (bounded work per command). */
export const MAX_ATRN_DOMAINS = 100;

const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

/** Parsed ATRN argument: `[]` means "every domain of the user". */
export type AtrnParse =
  | { readonly ok: true; readonly domains: readonly string[] }
  | { readonly ok: false; readonly reason: string };

/** Parses the text after `ATRN` (may be empty). */
export function parseAtrnArgs(args: string): AtrnParse {
  const text = args.trim();
  if (text === "") return { ok: true, domains: [] };
  const items = text.split(",");
  if (items.length > MAX_ATRN_DOMAINS) {
    return { ok: false, reason: `more than ${MAX_ATRN_DOMAINS} domains` };
  }
  const seen = new Set<string>();
  for (const raw of items) {
    const domain = raw.trim().toLowerCase();
    if (domain === "") return { ok: false, reason: "empty domain in list" };
    if (!isAtrnDomain(domain)) return { ok: false, reason: `invalid domain "${raw.trim()}"` };
    seen.add(domain);
  }
  return { ok: true, domains: [...seen] };
}

/** `domain = sub-domain 1*("." sub-domain)`, LDH labels, at most 255 octets. */
function isAtrnDomain(domain: string): boolean {
  if (domain.length > 255) return false;
  const labels = domain.split(".");
  if (labels.length < 2) return false;
  return labels.every((l) => LABEL_RE.test(l));
}
