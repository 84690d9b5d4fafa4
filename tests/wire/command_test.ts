import { deepStrictEqual as assertEquals } from "node:assert/strict";
import fc from "fast-check";
import { parseCommandLine } from "../../src/wire/command.ts";

const encoder = new TextEncoder();

Deno.test("parseCommandLine() splits verb and arguments", async (t) => {
  const rows = [
    {
      line: "ehlo client.test",
      utf8: false,
      want: { ok: true, verb: "EHLO", args: "client.test" },
    },
    { line: "QUIT", utf8: false, want: { ok: true, verb: "QUIT", args: "" } },
    { line: "NOOP  x  ", utf8: false, want: { ok: true, verb: "NOOP", args: "x" } },
    {
      line: "MAIL FROM:<a@b> SIZE=1",
      utf8: false,
      want: { ok: true, verb: "MAIL", args: "FROM:<a@b> SIZE=1" },
    },
    { line: "MAIL FROM:<ü@b>", utf8: true, want: { ok: true, verb: "MAIL", args: "FROM:<ü@b>" } },
    { line: "MAIL FROM:<ü@b>", utf8: false, want: { ok: false, fault: "nonAscii" } },
    { line: "NOOP \x00", utf8: true, want: { ok: false, fault: "controlChar" } },
    { line: "NOOP\tx", utf8: false, want: { ok: false, fault: "controlChar" } },
    { line: "NOOP \x7f", utf8: false, want: { ok: false, fault: "controlChar" } },
    { line: "", utf8: false, want: { ok: false, fault: "empty" } },
    { line: "   ", utf8: false, want: { ok: false, fault: "empty" } },
    { line: "GET/ x", utf8: false, want: { ok: false, fault: "badVerb" } },
  ] as const;
  for (const row of rows) {
    await t.step(JSON.stringify(row.line), () => {
      assertEquals(parseCommandLine(encoder.encode(row.line), { allowUtf8: row.utf8 }), row.want);
    });
  }
  await t.step("invalid UTF-8 is refused", () => {
    const line = Uint8Array.of(0x4e, 0x4f, 0x4f, 0x50, 0x20, 0xc3, 0x28);
    assertEquals(parseCommandLine(line, { allowUtf8: true }), { ok: false, fault: "badUtf8" });
  });
});

Deno.test("parseCommandLine(): ASCII and UTF-8 lines give the text TextDecoder gives (property, #13)", () => {
  // ASCII lines are turned into text in the validating pass, others by TextDecoder: both must
  // give the same verb and arguments as decoding the whole line.
  const char = fc.oneof(
    fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)),
    fc.constantFrom("é", "ü", "€", "😀"),
  );
  fc.assert(
    fc.property(fc.array(char, { maxLength: 40 }), (chars) => {
      const text = chars.join("");
      const got = parseCommandLine(encoder.encode(text), { allowUtf8: true });
      const trimmed = text.replace(/ +$/, "");
      if (!got.ok) return;
      assertEquals(trimmed.toUpperCase().startsWith(got.verb), true, text);
      assertEquals(trimmed.endsWith(got.args), true, text);
      assertEquals(trimmed.slice(got.verb.length).trimStart(), got.args, text);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("parseCommandLine(): ASCII lines at and past 1024 bytes give the whole text (#13)", () => {
  // Up to 1024 bytes the text is made by one String.fromCharCode call, longer lines by
  // TextDecoder (an AUTH response may be long): both give every character back.
  for (const n of [1023, 1024, 1025, 20_000]) {
    const args = "x".repeat(n - "AUTH ".length);
    const line = encoder.encode(`AUTH ${args}`);
    assertEquals(line.length, n);
    assertEquals(parseCommandLine(line, { allowUtf8: false }), { ok: true, verb: "AUTH", args });
  }
});
