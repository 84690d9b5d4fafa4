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
