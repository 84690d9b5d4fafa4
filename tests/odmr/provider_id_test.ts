// The provider's queue id in the customer's log line (`providerId=`): the `id` of the topmost
// Received: header, read from the body's first bytes as they pass, whatever the chunking (#13:
// before, every message's first 2 KB were copied, decoded and searched with a regex).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import fc from "fast-check";
import { HEAD_SNIFF_BYTES, ProviderIdSniffer } from "../../src/odmr/_customer_provider_id.ts";

const latin1 = new TextDecoder("latin1");
const enc = (s: string) => Uint8Array.from(s, (c) => c.charCodeAt(0) & 0xff);

/** What the log line carried before (#13): the regex over the latin1 text of the first 2 KB. */
function byRegex(body: Uint8Array): string | undefined {
  const head = latin1.decode(body.subarray(0, HEAD_SNIFF_BYTES));
  return /^Received:[^]*?\sid ([A-Za-z0-9._-]+)/.exec(head)?.[1];
}

/** The sniffer fed `body` cut at `cuts`; each chunk is overwritten after the call. */
function bySniffer(body: Uint8Array, cuts: number[]): string | undefined {
  const sniffer = new ProviderIdSniffer();
  let at = 0;
  for (const cut of [...cuts.filter((c) => c < body.length)].sort((a, b) => a - b)) {
    const chunk = body.slice(at, cut);
    sniffer.push(chunk);
    chunk.fill(0x21); // the reader may free or reuse a chunk once write returned
    at = cut;
  }
  sniffer.push(body.slice(at));
  return sniffer.id;
}

Deno.test("provider id (#13): the topmost Received: header's id, in one chunk or many", () => {
  const body = enc(
    "Received: from mx.example (mx.example [192.0.2.1])\r\n\tby relay.example with ESMTPS" +
      " id 01J9ZK3.X_y-z\r\n\tfor <a@b.example>; Sat, 28 Nov 2026 13:00:00 +0000\r\n" +
      "Received: from other id NOTTHIS\r\nSubject: hi\r\n\r\nbody\r\n",
  );
  assertEquals(bySniffer(body, []), "01J9ZK3.X_y-z");
  for (let cut = 1; cut < body.length; cut++) {
    assertEquals(bySniffer(body, [cut]), "01J9ZK3.X_y-z", `cut at ${cut}`);
  }
  assertEquals(bySniffer(enc("Subject: x\r\nReceived: by y id Z\r\n\r\n"), []), undefined);
  assertEquals(bySniffer(enc("Received: by y with SMTP\r\n\r\n"), [3]), undefined);
  assertEquals(bySniffer(enc("Recei"), []), undefined);
  assertEquals(new ProviderIdSniffer().id, undefined);
});

Deno.test("provider id (#13): the same answer as the regex it replaced, for any bytes and cuts", () => {
  const piece = fc.constantFrom(
    "Received:",
    " id ",
    "\tid ",
    "\r\nid ",
    "\xa0id ",
    "id",
    " ",
    "abc",
    "Q.1_x-9",
    "é",
    ";",
    "\r\n",
    "\r\n\t",
    "x".repeat(700),
  );
  const bodies = fc.tuple(
    fc.boolean(),
    fc.array(piece, { maxLength: 30 }),
  ).map(([isReceived, ps]) => enc((isReceived ? "Received:" : "") + ps.join("")));
  fc.assert(
    fc.property(bodies, fc.array(fc.nat(2600), { maxLength: 6 }), (body, cuts) => {
      assertEquals(bySniffer(body, cuts), byRegex(body));
    }),
    { numRuns: 2000 },
  );
});
