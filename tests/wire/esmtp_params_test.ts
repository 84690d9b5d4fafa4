import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { isXtext, parseMailParameters, parseRcptParameters } from "../../src/wire/esmtp_params.ts";

Deno.test("parseMailParameters() reads the MAIL parameters", async (t) => {
  const rows = [
    { text: "", want: { ok: true, params: {} } },
    {
      text: "SIZE=1000 body=8bitmime SMTPUTF8 RET=hdrs ENVID=QQ+2B1",
      want: {
        ok: true,
        params: { size: 1000, body: "8BITMIME", smtputf8: true, ret: "HDRS", envid: "QQ+2B1" },
      },
    },
    { text: "AUTH=<>", want: { ok: true, params: {} } },
    { text: "BODY=BINARYMIME", want: { ok: true, params: { body: "BINARYMIME" } } },
    { text: "SIZE=1 size=2", want: { ok: false, fault: "duplicate", keyword: "SIZE" } },
    { text: "FOO=1", want: { ok: false, fault: "unknown", keyword: "FOO" } },
    { text: "SIZE=abc", want: { ok: false, fault: "badValue", keyword: "SIZE" } },
    { text: "SIZE", want: { ok: false, fault: "badValue", keyword: "SIZE" } },
    { text: "BODY=9BIT", want: { ok: false, fault: "badValue", keyword: "BODY" } },
    { text: "SMTPUTF8=yes", want: { ok: false, fault: "badValue", keyword: "SMTPUTF8" } },
    { text: "RET=ALL", want: { ok: false, fault: "badValue", keyword: "RET" } },
    { text: "ENVID=a+b", want: { ok: false, fault: "badValue", keyword: "ENVID" } },
    { text: `ENVID=${"x".repeat(101)}`, want: { ok: false, fault: "badValue", keyword: "ENVID" } },
    { text: "=x", want: { ok: false, fault: "syntax", keyword: "" } },
    { text: "SIZE=1=2", want: { ok: false, fault: "syntax", keyword: "SIZE" } },
  ] as const;
  for (const row of rows) {
    await t.step(row.text || "(none)", () => assertEquals(parseMailParameters(row.text), row.want));
  }
});

Deno.test("parseRcptParameters() reads NOTIFY and ORCPT", async (t) => {
  const rows = [
    { text: "NOTIFY=never", want: { ok: true, params: { notify: "NEVER" } } },
    {
      text: "NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a+40b.test",
      want: { ok: true, params: { notify: "SUCCESS,FAILURE", orcpt: "rfc822;a+40b.test" } },
    },
    { text: "NOTIFY=NEVER,SUCCESS", want: { ok: false, fault: "badValue", keyword: "NOTIFY" } },
    { text: "NOTIFY=DELAY,DELAY", want: { ok: false, fault: "badValue", keyword: "NOTIFY" } },
    { text: "ORCPT=a@b.test", want: { ok: false, fault: "badValue", keyword: "ORCPT" } },
    { text: "SIZE=1", want: { ok: false, fault: "unknown", keyword: "SIZE" } },
    {
      text: "NOTIFY=NEVER NOTIFY=NEVER",
      want: { ok: false, fault: "duplicate", keyword: "NOTIFY" },
    },
  ] as const;
  for (const row of rows) {
    await t.step(row.text, () => assertEquals(parseRcptParameters(row.text), row.want));
  }
});

Deno.test("isXtext() follows RFC 3461 §4", () => {
  assertEquals(isXtext("abc+2B+3D"), true);
  assertEquals(isXtext("a+2b"), false);
  assertEquals(isXtext("a=b"), false);
  assertEquals(isXtext("a b"), false);
});

Deno.test(
  "ENVID and ORCPT must encode printable US-ASCII (RFC 3461 §4.2, §4.4): a value that decodes " +
    "to a control or an 8-bit octet is refused (501 5.5.4), as Postfix refuses such an ENVID",
  async (t) => {
    const mail = [
      "ENVID=a+0D+0Ab",
      "ENVID=a+00b",
      "ENVID=a+1Bb",
      "ENVID=a+7Fb",
      "ENVID=a+C3+A9b",
    ];
    for (const text of mail) {
      await t.step(text, () => {
        assertEquals(parseMailParameters(text), {
          ok: false,
          fault: "badValue",
          keyword: "ENVID",
        });
      });
    }
    const rcpt = [
      "ORCPT=rfc822;a+0D+0AX-Evil:+20x@b.test",
      "ORCPT=rfc822;a+00@b.test",
      "ORCPT=rfc822;a+7F@b.test",
      // A UTF-8 address has its own type (RFC 6533 §3), never octets in an rfc822 one.
      "ORCPT=rfc822;b+C3+B8b@b.test",
      "ORCPT=x400;a+0Ab",
    ];
    for (const text of rcpt) {
      await t.step(text, () => {
        assertEquals(parseRcptParameters(text), {
          ok: false,
          fault: "badValue",
          keyword: "ORCPT",
        });
      });
    }
    await t.step("printable values, white space included, are taken as received", () => {
      assertEquals(parseMailParameters("ENVID=a+20b+09c+2B"), {
        ok: true,
        params: { envid: "a+20b+09c+2B" },
      });
      assertEquals(parseRcptParameters("ORCPT=rfc822;+22a+20b+22@b.test"), {
        ok: true,
        params: { orcpt: "rfc822;+22a+20b+22@b.test" },
      });
    });
  },
);

Deno.test(
  "a utf-8 ORCPT (RFC 6533 §3) is taken as utf-8-addr-xtext or -unitext, kept in its 7-bit " +
    "utf-8-addr-xtext form; a malformed one is refused",
  async (t) => {
    const taken = [
      ["ORCPT=utf-8;b\\x{F8}b@d\\x{E9}st.test", "utf-8;b\\x{F8}b@d\\x{E9}st.test"],
      // utf-8-addr-unitext: the UTF-8 itself, safe where SMTPUTF8 is advertised (we always do).
      ["ORCPT=utf-8;bøb@dést.test", "utf-8;b\\x{F8}b@d\\x{E9}st.test"],
      ["ORCPT=UTF-8;b\\x{f8}b\\x{2B}x@dest.test", "UTF-8;b\\x{F8}b\\x{2B}x@dest.test"],
      ["ORCPT=utf-8;\\x{1F600}@dest.test", "utf-8;\\x{1F600}@dest.test"],
      ["ORCPT=utf-8;plain@dest.test", "utf-8;plain@dest.test"],
    ] as const;
    for (const [text, orcpt] of taken) {
      await t.step(text, () => {
        assertEquals(parseRcptParameters(text), { ok: true, params: { orcpt } });
      });
    }
    const refused = [
      "ORCPT=utf-8;b\\x{F8b@dest.test", // unterminated
      "ORCPT=utf-8;b\\x{}b@dest.test", // no digits
      "ORCPT=utf-8;b\\x{G8}b@dest.test", // not hex
      "ORCPT=utf-8;b\\x{110000}b@dest.test", // past Unicode
      "ORCPT=utf-8;b\\x{D800}b@dest.test", // a surrogate
      "ORCPT=utf-8;b\\x{00F8}b@dest.test", // leading zeros (HEXPOINT is the shortest form)
      "ORCPT=utf-8;b\\x{41}b@dest.test", // ASCII that QCHAR holds as it is
      "ORCPT=utf-8;b\\x{0D}\\x{0A}b@dest.test", // decodes to a line break
      "ORCPT=utf-8;b\\nb@dest.test", // a bare backslash
      "ORCPT=utf-8;b+2Bb@dest.test", // "+" is no QCHAR: xtext's +XX is not this form
      "ORCPT=utf-8;nobody", // dequoted it must be a Mailbox
      "ORCPT=utf-8;@relay.test:b@dest.test",
      `ORCPT=utf-8;${"\\x{F8}".repeat(65)}@dest.test`, // a local part over 64 octets
    ];
    for (const text of refused) {
      await t.step(text, () => {
        assertEquals(parseRcptParameters(text), { ok: false, fault: "badValue", keyword: "ORCPT" });
      });
    }
  },
);
