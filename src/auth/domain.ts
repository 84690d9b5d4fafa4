/**
 * Domain-name normalisation shared by the credential store, RCPT checks and ATRN: lower case,
 * IDN to A-label (`node:url` domainToASCII, src/wire/idna.ts), one trailing dot stripped, RFC 1123 host syntax
 * with at least two labels. Pure; no DNS.
 */
import { domainToAscii } from "../wire/idna.ts";

const MAX_NAME_OCTETS = 253;
const MAX_LABEL_OCTETS = 63;
const LABEL_RE = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$/;

/** The normalised A-label form of `input`, or undefined when it is not a valid host name. */
export function normalizeDomain(input: string): string | undefined {
  let name = input.trim();
  if (name.endsWith(".")) name = name.slice(0, -1);
  if (name === "" || name.includes("..") || name.startsWith(".") || name.endsWith(".")) {
    return undefined;
  }
  // domainToAscii lower-cases and maps IDN to punycode; it returns "" when it refuses.
  const ascii = /^[\x21-\x7e]+$/.test(name) ? name.toLowerCase() : domainToAscii(name);
  if (ascii === "" || ascii.length > MAX_NAME_OCTETS) return undefined;
  const labels = ascii.split(".");
  if (labels.length < 2) return undefined;
  for (const label of labels) {
    if (label.length > MAX_LABEL_OCTETS || !LABEL_RE.test(label)) return undefined;
  }
  // The top-level label of a host name is never all digits (RFC 3696 §2); refuses IPv4 too.
  if (/^\d+$/.test(labels[labels.length - 1] ?? "")) return undefined;
  return ascii;
}
