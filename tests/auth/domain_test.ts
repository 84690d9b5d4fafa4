import { equal } from "node:assert/strict";
import { normalizeDomain } from "../../src/auth/domain.ts";

Deno.test("normalizeDomain() normalises valid names and refuses invalid ones", async (t) => {
  const label63 = "a".repeat(63);
  const label64 = "a".repeat(64);
  const name253 = `${label63}.${label63}.${label63}.${"c".repeat(61)}`;
  const rows: { input: string; want: string | undefined; why: string }[] = [
    { input: "example.org", want: "example.org", why: "plain name" },
    { input: "Example.ORG", want: "example.org", why: "lower-cased" },
    { input: "example.org.", want: "example.org", why: "one trailing dot stripped" },
    { input: "example.org..", want: undefined, why: "two trailing dots" },
    { input: "bücher.example", want: "xn--bcher-kva.example", why: "IDN to A-label" },
    { input: "BÜCHER.example", want: "xn--bcher-kva.example", why: "IDN upper case" },
    { input: "xn--bcher-kva.example", want: "xn--bcher-kva.example", why: "A-label kept" },
    { input: "localhost", want: undefined, why: "single label" },
    { input: "a..b", want: undefined, why: "empty label" },
    { input: ".example.org", want: undefined, why: "leading dot" },
    { input: "-bad.example", want: undefined, why: "leading hyphen" },
    { input: "bad-.example", want: undefined, why: "trailing hyphen" },
    { input: "under_score.example", want: undefined, why: "underscore" },
    { input: `${label63}.example`, want: `${label63}.example`, why: "63-octet label" },
    { input: `${label64}.example`, want: undefined, why: "64-octet label" },
    { input: "", want: undefined, why: "empty" },
    { input: ".", want: undefined, why: "root" },
    { input: "192.0.2.1", want: undefined, why: "IPv4 address" },
    { input: "[192.0.2.1]", want: undefined, why: "address literal" },
    { input: "a b.example", want: undefined, why: "space" },
    { input: "sub.Example.Org", want: "sub.example.org", why: "three labels" },
    { input: name253, want: name253, why: "253-octet name" },
    { input: `b${name253}`, want: undefined, why: "254-octet name" },
  ];
  for (const row of rows) {
    await t.step(`${row.why}: ${JSON.stringify(row.input).slice(0, 40)}`, () => {
      equal(normalizeDomain(row.input), row.want);
    });
  }
});
