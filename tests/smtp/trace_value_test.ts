/**
 * Values in the Received: header are cut at 255 octets of UTF-8, at a character boundary
 * (#10), measured without encoding each character (#13): at 255 and 256 octets, ASCII and
 * multi-byte, and the HELO name always ASCII.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { formatReceived } from "../../src/smtp/trace.ts";

const dec = new TextDecoder();

function written(recipient: string, heloName = "client.example"): { helo: string; rcpt: string } {
  const text = dec.decode(formatReceived({
    heloName,
    remoteAddress: "192.0.2.1",
    hostname: "mx.example",
    protocol: "ESMTP",
    id: "ABC123",
    recipient,
    date: new Date(0),
  }));
  const rcpt = /\tfor <([^>]*)>/.exec(text)?.[1] ?? "";
  const helo = /^Received: from (\S+) /.exec(text)?.[1] ?? "";
  return { helo, rcpt };
}

const octets = (s: string) => new TextEncoder().encode(s).length;

Deno.test("Received: an ASCII value of 255 octets is kept, one of 256 is cut to 255 (#13)", () => {
  const at255 = "a".repeat(243) + "@example.org";
  assertEquals(octets(at255), 255);
  assertEquals(written(at255).rcpt, at255);
  assertEquals(written("b" + at255).rcpt, ("b" + at255).slice(0, 255));
});

Deno.test("Received: a UTF-8 value is cut at a character boundary within 255 octets (#13)", () => {
  // 127 × 2 octets = 254: the next "é" would make 256, so it is left out.
  const twoByte = "é".repeat(200);
  assertEquals(written(twoByte).rcpt, "é".repeat(127));
  // One ASCII octet first: 1 + 127 × 2 = 255, exactly at the limit.
  assertEquals(written("a" + twoByte).rcpt, "a" + "é".repeat(127));
  // Four-octet characters: 63 × 4 = 252, a 64th would pass 255.
  const fourByte = "😀".repeat(100);
  assertEquals(written(fourByte).rcpt, "😀".repeat(63));
  assertEquals(octets(written("xyz" + fourByte).rcpt), 255);
});

Deno.test("Received: a non-ASCII HELO name is written with ? for each character (#13)", () => {
  assertEquals(written("r@example.org", "héllo.example").helo, "h?llo.example");
});

Deno.test('Received: every printable ASCII character is kept but ()<>;\\" and space, which become ? (#13)', () => {
  // Safe values are written as they are without a replace (#13): the same characters as before.
  for (let c = 0x00; c <= 0x7f; c++) {
    const ch = String.fromCharCode(c);
    const kept = c > 0x20 && c < 0x7f && !'()<>;\\"'.includes(ch);
    if (ch !== ">") {
      assertEquals(written(`a${ch}b`).rcpt, kept ? `a${ch}b` : "a?b", `0x${c.toString(16)}`);
    }
    assertEquals(
      written("r@example.org", `h${ch}`).helo,
      kept ? `h${ch}` : "h?",
      `0x${c.toString(16)}`,
    );
  }
  assertEquals(written("r@example.org", "").helo, "unknown");
});

Deno.test("Received: the date is the message's own, also within the same second and past it (#13)", () => {
  const dateOf = (ms: number) =>
    /; (.*)\r\n$/.exec(dec.decode(formatReceived({
      heloName: "c.example",
      remoteAddress: "192.0.2.1",
      hostname: "mx.example",
      protocol: "ESMTP",
      id: "ID1",
      date: new Date(ms),
    })))?.[1];
  const t = Date.UTC(2026, 10, 28, 18, 30, 5);
  assertEquals(dateOf(t), "Sat, 28 Nov 2026 18:30:05 +0000");
  assertEquals(dateOf(t + 999), "Sat, 28 Nov 2026 18:30:05 +0000");
  assertEquals(dateOf(t + 1000), "Sat, 28 Nov 2026 18:30:06 +0000");
  assertEquals(dateOf(t - 1), "Sat, 28 Nov 2026 18:30:04 +0000");
});
