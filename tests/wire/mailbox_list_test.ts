/**
 * The addr-specs of a From field's mailbox-list (src/wire/mailbox_list.ts): display names,
 * comments and quoted text never yield an address; what is no mailbox-list is undefined.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { mailboxListAddresses } from "../../src/wire/mailbox_list.ts";

Deno.test("mailboxListAddresses: each mailbox's addr-spec, nothing from names or comments", () => {
  const rows: [string, string[] | undefined][] = [
    [" a@x.test\r\n", ["a@x.test"]],
    [' "b@evil.test" <a@x.test>', ["a@x.test"]],
    [" Alice (boss (b@evil.test) \\) ok) <a@x.test> (c@evil.test)", ["a@x.test"]],
    [' "a\\"@b"@x.test', ['"a"@b"@x.test']],
    [" Dr. J. Doe <a@x.test>, , b @ y . test", ["a@x.test", "b@y.test"]],
    [" =?utf-8?q?b=40evil.test?= <a@x.test>", ["a@x.test"]],
    [" Jörg <jörg@bücher.example>", ["jörg@bücher.example"]],
    [" a@x.test.", ["a@x.test."]],
    [" Alice\r\n <a@x.test>", ["a@x.test"]],
    [" b@evil.test <a@x.test>", undefined],
    [" Team: a@x.test;", undefined],
    [" <@route.test:a@x.test>", undefined],
    [" <@r1.test,@r2.test:a@x.test>", undefined],
    [" a@[192.0.2.1]", undefined],
    [" <a@x.test", undefined],
    [' "a@x.test', undefined],
    [" (a@x.test", undefined],
    [" A <a@x.test> B", undefined],
    [" A <B <a@x.test>>", undefined],
    [" a@@x.test", undefined],
    [" .a@x.test", undefined],
    [" a@x..test", undefined],
    [" a\u0001@x.test", undefined],
    ["", []],
  ];
  for (const [value, want] of rows) {
    const got = mailboxListAddresses(value)?.map((s) => `${s.localPart}@${s.domain}`);
    assertEquals(got, want, JSON.stringify(value));
  }
});
