/**
 * src/wire/idna.ts against `node:url`'s domainToASCII, which it calls only for names that are
 * not plain ASCII: the same result for random ASCII (where it does not call it), random
 * Unicode, and A-labels valid and not.
 */
import { equal } from "node:assert/strict";
import { domainToASCII } from "node:url";
import fc from "fast-check";
import { domainToAscii } from "../../src/wire/idna.ts";

function agrees(domain: string): void {
  equal(domainToAscii(domain), domainToASCII(domain), JSON.stringify(domain));
}

Deno.test("domainToAscii equals node:url's domainToASCII on any ASCII", () => {
  fc.assert(fc.property(fc.string({ unit: "binary-ascii", maxLength: 30 }), agrees), {
    numRuns: 20000,
  });
  const labels = fc.constantFrom(
    "xn--",
    "XN--",
    "xn--zca",
    "xn--abc",
    "-",
    "a",
    "B",
    "_",
    ".",
    "1",
  );
  fc.assert(fc.property(fc.array(labels, { maxLength: 6 }).map((l) => l.join("")), agrees), {
    numRuns: 5000,
  });
  for (
    const d of ["", ".", "a..b", "Example.ORG", "xn--bcher-kva.example", "XN--ZCA.com", "xn--"]
  ) {
    agrees(d);
  }
});

Deno.test("domainToAscii equals node:url's domainToASCII on Unicode names", () => {
  fc.assert(fc.property(fc.string({ unit: "grapheme", maxLength: 20 }), agrees), {
    numRuns: 5000,
  });
  for (const d of ["Bücher.example", "ｅｘａｍｐｌｅ.com", "xß.de", "例え.テスト", "ÄÖ.xn--zca"]) {
    agrees(d);
  }
});
