/**
 * `domainToASCII` of `node:url` (UTS #46 ToASCII, non-strict: lower case, IDN labels to
 * punycode A-labels, "" when it refuses), loaded only for a name that needs it: an ASCII name
 * with no "xn--" label comes out lower-cased and otherwise unchanged (tests check this against
 * `node:url` on random ASCII). Importing `node:url` makes Deno load about 15 of its Node.js
 * compatibility modules (Buffer, querystring, …), resident memory an idle `serve` with ASCII
 * domains never uses (issue 13); Deno's `node:url` is built into the executable, so loading it
 * later reads nothing from disk. The first such name costs once what `node:url` takes (about
 * 0.3 MB of V8 heap, as when it loaded at start-up), and about 0.75 MB more for `node:process`
 * (`process.getBuiltinModule`) in a process where neither `node:crypto` (the first AUTH) nor
 * `node:tls` loaded it already.
 */

type DomainToAscii = (domain: string) => string;

let nodeDomainToAscii: DomainToAscii | undefined;

/** `node:url`'s `domainToASCII(domain)`. */
export function domainToAscii(domain: string): string {
  const lower = domain.toLowerCase();
  if (isAscii(domain) && !lower.includes("xn--")) return lower;
  nodeDomainToAscii ??= loadNodeDomainToAscii();
  return nodeDomainToAscii(domain);
}

function loadNodeDomainToAscii(): DomainToAscii {
  // Synchronous, unlike import(): the callers parse a command line or a config value.
  const url = process.getBuiltinModule("node:url") as { domainToASCII: DomainToAscii };
  return url.domainToASCII;
}

function isAscii(text: string): boolean {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) > 0x7f) return false;
  return true;
}
