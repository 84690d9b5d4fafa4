import { deepStrictEqual as assertEquals } from "node:assert/strict";
import fc from "fast-check";
import { domainToASCII } from "node:url";
import {
  parseAddressLiteral,
  parseDomain,
  parseMailArgument,
  parseRcptArgument,
} from "../../src/wire/address.ts";

Deno.test("parseMailArgument() reads the reverse-path and leaves the parameters", async (t) => {
  const rows = [
    {
      args: "FROM:<User@Example.COM> SIZE=10",
      want: { address: "User@example.com", domain: "example.com", params: "SIZE=10" },
    },
    { args: "from:<a@b.test>", want: { address: "a@b.test", domain: "b.test", params: "" } },
    { args: "FROM: <a@b.test>", want: { address: "a@b.test", domain: "b.test", params: "" } },
    { args: "FROM:<>", want: { address: "", domain: "", params: "" } },
    { args: "FROM:<> BODY=8BITMIME", want: { address: "", domain: "", params: "BODY=8BITMIME" } },
    {
      args: "FROM:<@relay.test,@r2.test:a@b.test>",
      want: { address: "a@b.test", domain: "b.test", params: "" },
    },
    {
      args: 'FROM:<"a b>c"@b.test>',
      want: { address: '"a b>c"@b.test', domain: "b.test", params: "" },
    },
    { args: "FROM:<a@b.test.>", want: { address: "a@b.test", domain: "b.test", params: "" } },
    {
      args: "FROM:<ü@bücher.test>",
      want: { address: "ü@xn--bcher-kva.test", domain: "xn--bcher-kva.test", params: "" },
    },
  ];
  for (const row of rows) {
    await t.step(row.args, () => {
      const got = parseMailArgument(row.args);
      if (!got.ok) throw new Error(`refused: ${got.fault}`);
      assertEquals(
        { address: got.mailbox.address, domain: got.mailbox.domain, params: got.params },
        row.want,
      );
    });
  }
});

Deno.test("parseMailArgument() and parseRcptArgument() refuse bad paths", async (t) => {
  const local64 = "l".repeat(64);
  const D252 = `${"d".repeat(63)}.${"e".repeat(63)}.${"f".repeat(63)}.${"g".repeat(60)}`;
  const rows = [
    { args: "FROM:a@b.test", fault: "syntax", why: "no brackets" },
    { args: "FROM:  <a@b.test>", fault: "syntax", why: "two spaces after the colon" },
    { args: "FROM <a@b.test>", fault: "syntax", why: "no colon" },
    { args: "FROM:<a@b.test>SIZE=1", fault: "syntax", why: "no space before params" },
    { args: "FROM:<a@b.test", fault: "syntax", why: "unclosed" },
    { args: "FROM:<a b@c.test>", fault: "syntax", why: "space in local part" },
    { args: "FROM:<a..b@c.test>", fault: "syntax", why: "empty atom" },
    { args: "FROM:<a@>", fault: "badDomain", why: "empty domain" },
    { args: "FROM:<a@-x.test>", fault: "badDomain", why: "label starts with -" },
    { args: "FROM:<a@x_y.test>", fault: "badDomain", why: "underscore" },
    { args: "FROM:<a@1.2.3.4>", fault: "badDomain", why: "IP without brackets" },
    { args: "FROM:<a@[1.2.3.999]>", fault: "badDomain", why: "bad IPv4 literal" },
    { args: `FROM:<${local64}@b.test>`, fault: "ok", why: "local part of 64" },
    { args: `FROM:<${local64}l@b.test>`, fault: "localPartTooLong", why: "local part of 65" },
    { args: `FROM:<a@${D252}>`, fault: "ok", why: "path of 256 (domain of 252)" },
    { args: `FROM:<a@${D252}g>`, fault: "pathTooLong", why: "path of 257" },
    {
      args: `FROM:<${local64}@b.${D252}>`,
      fault: "pathTooLong",
      why: "long local part and domain",
    },
    { args: "TO:<>", fault: "nullNotAllowed", why: "null forward-path" },
    { args: "FROM:<Postmaster>", fault: "syntax", why: "bare Postmaster is for RCPT only" },
  ];
  for (const row of rows) {
    await t.step(row.why, () => {
      const got = row.args.startsWith("TO:")
        ? parseRcptArgument(row.args)
        : parseMailArgument(row.args);
      assertEquals(got.ok ? "ok" : got.fault, row.fault);
    });
  }
});

Deno.test("parseRcptArgument() accepts the bare <Postmaster> with an empty domain", () => {
  for (const pm of ["Postmaster", "postmaster", "POSTMASTER"]) {
    const got = parseRcptArgument(`TO:<${pm}> NOTIFY=NEVER`);
    if (!got.ok) throw new Error("refused");
    assertEquals([got.mailbox.address, got.mailbox.domain, got.params], [pm, "", "NOTIFY=NEVER"]);
  }
});

Deno.test("address literals are recognised as literals, never as domains", () => {
  assertEquals(parseAddressLiteral("[192.0.2.1]"), "[192.0.2.1]");
  assertEquals(parseAddressLiteral("[ipv6:2001:DB8::1]"), "[IPv6:2001:db8::1]");
  assertEquals(parseAddressLiteral("[1.2.3]"), undefined);
  const got = parseRcptArgument("TO:<a@[10.0.0.1]>");
  if (!got.ok) throw new Error("refused");
  assertEquals([got.mailbox.isLiteral, got.mailbox.domain], [true, "[10.0.0.1]"]);
});

Deno.test("parseDomain() normalises to the lower-case A-label", () => {
  assertEquals(parseDomain("Example.ORG."), "example.org");
  assertEquals(parseDomain("BÜCHER.example"), "xn--bcher-kva.example");
  assertEquals(parseDomain("example.org.."), undefined);
  assertEquals(parseDomain("exa%mple.org"), undefined);
});

/** parseDomain as it was before the ASCII fast path: every name through domainToASCII. */
function parseDomainViaIdna(text: string): string | undefined {
  const bare = text.endsWith(".") ? text.slice(0, -1) : text;
  if (bare === "" || /[^\p{L}\p{M}\p{N}.-]/u.test(bare)) return undefined;
  const ascii = domainToASCII(bare);
  if (ascii === "" || ascii.length > 255) return undefined;
  const labels = ascii.split(".");
  for (const label of labels) {
    if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) return undefined;
  }
  if (/^[0-9]+$/.test(labels[labels.length - 1] ?? "")) return undefined;
  return ascii;
}

Deno.test("parseDomain() without the IDNA call for ASCII names answers as domainToASCII did", () => {
  // Pieces near the fast path's edges: case, "xn--" labels (valid and invalid Punycode),
  // control characters one bit away from "." "-" and digits, non-ASCII letters, marks and
  // digits, and the Kelvin sign and dotless i that UTS #46 maps onto ASCII letters.
  const pieces = [
    ..."a Z q 0 9 . - xn-- XN-- Xn-- xn--bcher-kva xn--zz @ _ ` { [".split(" "),
    ...[" ", "\r", "\x0e", "\x0d", "\x10", "\x19", "\x7f"],
    ...["ü", "Ü", "ß", "\u212a", "\u0131", "\u0301", "\u0661", "\u3002", "ａ"],
  ];
  const name = fc.array(fc.constantFrom(...pieces), { maxLength: 12 }).map((p) => p.join(""));
  const long = fc.tuple(fc.integer({ min: 60, max: 66 }), fc.integer({ min: 1, max: 5 }))
    .map(([n, k]) => Array.from({ length: k }, () => "A".repeat(n)).join("."));
  fc.assert(
    fc.property(fc.oneof(name, long), (text) => {
      assertEquals(parseDomain(text), parseDomainViaIdna(text));
    }),
    { numRuns: 20000 },
  );
  for (const text of ["Example.ORG", "xn--bcher-kva.example", "XN--ZZ.example", "a\x0eb.c"]) {
    assertEquals(parseDomain(text), parseDomainViaIdna(text));
  }
});

Deno.test("the domain limit applies on its own when the path limit is larger", () => {
  const limits = { maxLocalPartBytes: 64, maxDomainBytes: 255, maxPathBytes: 1000 };
  const label = "d".repeat(63);
  const d255 = `${label}.${label}.${label}.${"e".repeat(63)}`;
  const at255 = parseMailArgument(`FROM:<a@${d255}>`, limits);
  assertEquals(at255.ok ? "ok" : at255.fault, "ok");
  const at256 = parseMailArgument(`FROM:<a@${d255}e>`, limits);
  assertEquals(at256.ok ? "ok" : at256.fault, "domainTooLong");
});

Deno.test("path limits count UTF-8 octets, not characters: N and N+1 (#13)", async (t) => {
  // The lengths are counted without encoding the text; each width of character must count
  // what TextEncoder writes.
  const octets = (s: string) => new TextEncoder().encode(s).length;
  for (const ch of ["é", "€", "😀", "a"]) {
    await t.step(`${ch}: ${octets(ch)} octet(s)`, () => {
      const n = Math.floor(64 / octets(ch));
      const fits = ch.repeat(n) + "a".repeat(64 - n * octets(ch));
      assertEquals(octets(fits), 64);
      const at64 = parseMailArgument(`FROM:<${fits}@b.test>`);
      assertEquals(at64.ok ? "ok" : at64.fault, "ok");
      const at65 = parseMailArgument(`FROM:<${fits}a@b.test>`);
      assertEquals(at65.ok ? "ok" : at65.fault, "localPartTooLong");
    });
  }
  await t.step("a lone surrogate counts as U+FFFD (3 octets), as TextEncoder writes it", () => {
    const local = "\ud800" + "a".repeat(61); // 3 + 61 = 64
    assertEquals(octets(local), 64);
    const at64 = parseMailArgument(`FROM:<${local}@b.test>`);
    assertEquals(at64.ok ? "ok" : at64.fault, "ok");
    const at65 = parseMailArgument(`FROM:<${local}a@b.test>`);
    assertEquals(at65.ok ? "ok" : at65.fault, "localPartTooLong");
  });
});

Deno.test("a dot-string local part is taken exactly when it is dot-atom text (property, #13)", () => {
  // The oracle: RFC 5322 §3.2.3 dot-atom-text, with any non-ASCII character as atext (RFC 6531).
  const DOT_ATOM =
    /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10FFFF}]+(?:\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10FFFF}]+)*$/u;
  const char = fc.oneof(
    fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)),
    fc.constantFrom(".", ".", "é", "😀", "\u0080"),
  );
  fc.assert(
    fc.property(fc.array(char, { minLength: 1, maxLength: 12 }), (chars) => {
      const local = chars.join("");
      if (/[@"<>\\]/.test(local)) return; // ends the path or the part; other rules apply
      const got = parseMailArgument(`FROM:<${local}@b.test>`);
      assertEquals(got.ok, DOT_ATOM.test(local), local);
      if (got.ok) assertEquals(got.mailbox.localPart, local);
    }),
    { numRuns: 3000 },
  );
});
