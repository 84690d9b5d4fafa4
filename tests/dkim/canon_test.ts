import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import fc from "fast-check";
import {
  BodyCanonicalizer,
  type Canonicalization,
  canonicalizeHeader,
} from "../../src/dkim/canon.ts";
import { HeaderSplitter, parseFields } from "../../src/dkim/_headers.ts";
import { runPython } from "../_helpers/dkim.ts";
import { toolTest } from "../_helpers/tools.ts";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder("latin1").decode(b);

/** Canonicalizes `body` fed in the given pieces. */
function canonBody(kind: Canonicalization, pieces: readonly Uint8Array[]): string {
  const out: number[] = [];
  const c = new BodyCanonicalizer(kind, (b) => out.push(...b));
  for (const p of pieces) c.update(p);
  c.finish();
  return dec(Uint8Array.from(out));
}

/** Every way to cut `bytes` in two, plus one byte at a time. */
function splits(bytes: Uint8Array): Uint8Array[][] {
  const ways: Uint8Array[][] = [[bytes], Array.from(bytes, (b) => Uint8Array.of(b))];
  for (let i = 0; i <= bytes.length; i++) ways.push([bytes.subarray(0, i), bytes.subarray(i)]);
  return ways;
}

Deno.test("BodyCanonicalizer: the example of RFC 6376 §3.4.5, whole and split anywhere", () => {
  const body = enc(" C \r\nD \t E\r\n\r\n\r\n");
  for (const pieces of splits(body)) {
    assertEquals(canonBody("relaxed", pieces), " C\r\nD E\r\n");
    assertEquals(canonBody("simple", pieces), " C \r\nD \t E\r\n");
  }
});

Deno.test("BodyCanonicalizer: edge cases of the empty body and missing final CRLF", async (t) => {
  const rows: { what: string; body: string; simple: string; relaxed: string }[] = [
    { what: "empty body: CRLF (simple), nothing (relaxed)", body: "", simple: "\r\n", relaxed: "" },
    { what: "only empty lines count as empty", body: "\r\n\r\n", simple: "\r\n", relaxed: "" },
    {
      what: "whitespace-only lines are empty under relaxed",
      body: " \t\r\n \r\n",
      simple: " \t\r\n \r\n",
      relaxed: "",
    },
    { what: "no final CRLF: one is added", body: "abc", simple: "abc\r\n", relaxed: "abc\r\n" },
    {
      what: "WSP with no CRLF after it is one SP, then the added CRLF (relaxed)",
      body: "abc  ",
      simple: "abc  \r\n",
      relaxed: "abc \r\n",
    },
    {
      what: "inner empty lines stay",
      body: "a\r\n\r\nb\r\n\r\n",
      simple: "a\r\n\r\nb\r\n",
      relaxed: "a\r\n\r\nb\r\n",
    },
    {
      what: "bare CR and LF are content",
      body: "a\rb\nc\r",
      simple: "a\rb\nc\r\r\n",
      relaxed: "a\rb\nc\r\r\n",
    },
    {
      what: "leading WSP becomes one SP (relaxed)",
      body: "\t\t x\r\n",
      simple: "\t\t x\r\n",
      relaxed: " x\r\n",
    },
  ];
  for (const row of rows) {
    await t.step(row.what, () => {
      for (const pieces of splits(enc(row.body))) {
        assertEquals(canonBody("simple", pieces), row.simple);
        assertEquals(canonBody("relaxed", pieces), row.relaxed);
      }
    });
  }
});

Deno.test("BodyCanonicalizer: a million trailing empty lines are counted, not held", () => {
  const lines = new Uint8Array(2_000_000).map((_, i) => (i % 2 === 0 ? 13 : 10));
  let emitted = 0;
  const c = new BodyCanonicalizer("simple", (b) => (emitted += b.length));
  c.update(enc("x\r\n"));
  c.update(lines);
  c.update(enc("y"));
  c.finish();
  // "x" + the 1,000,001 line breaks before "y" + "y" + the final CRLF.
  assertEquals(emitted, 1 + 1_000_001 * 2 + 1 + 2);
});

Deno.test("canonicalizeHeader: the example of RFC 6376 §3.4.5", () => {
  const fields = parseFields(enc("A: X\r\nB : Y\t\r\n\tZ  \r\n"));
  assertEquals(fields.map((f) => f.name), ["A", "B"]);
  assertEquals(fields.map((f) => dec(canonicalizeHeader(f, "relaxed"))), ["a:X\r\n", "b:Y Z\r\n"]);
  assertEquals(fields.map((f) => dec(canonicalizeHeader(f, "simple"))), [
    "A: X\r\n",
    "B : Y\t\r\n\tZ  \r\n",
  ]);
});

Deno.test("HeaderSplitter: finds the empty line wherever the chunks split it", () => {
  const message = enc("From: a@b.example\r\nSubject: x\r\n y\r\n\r\n\r\nbody\r\n");
  for (const pieces of splits(message)) {
    const s = new HeaderSplitter(1024);
    const body: number[] = [];
    for (const p of pieces) {
      const r = s.push(p);
      assert(r.ok);
      body.push(...r.body);
    }
    assert(s.end().ok);
    assertEquals(dec(Uint8Array.from(body)), "\r\nbody\r\n");
    assertEquals(s.fields().map((f) => dec(f.raw)), [
      "From: a@b.example\r\n",
      "Subject: x\r\n y\r\n",
    ]);
  }
});

Deno.test("HeaderSplitter: a message without an empty line is all header", () => {
  const s = new HeaderSplitter(1024);
  assert(s.push(enc("From: a@b.example\r\nX: y\r")).ok);
  assert(s.end().ok);
  assertEquals(s.fields().map((f) => dec(f.raw)), ["From: a@b.example\r\n", "X: y\r"]);
});

Deno.test("HeaderSplitter: a header section at the limit passes, one byte more is refused", () => {
  const header = "X: " + "a".repeat(95) + "\r\n"; // 100 bytes
  const at = new HeaderSplitter(100);
  assert(at.push(enc(header + "\r\nbody")).ok);
  const over = new HeaderSplitter(99);
  assertEquals(over.push(enc(header + "\r\nbody")), { ok: false, reason: "header_too_large" });
});

// dkimpy's own canonicalization, fed the same random bodies: the two implementations agree.
const PY_CANON = `
import sys, json, base64
from dkim.canonicalization import Simple, Relaxed
out = []
for b in json.load(sys.stdin):
    body = base64.b64decode(b)
    out.append([base64.b64encode(Simple.canonicalize_body(body)).decode(),
                base64.b64encode(Relaxed.canonicalize_body(body)).decode()])
print(json.dumps(out))
`;

await toolTest(
  "BodyCanonicalizer agrees with python3-dkim on 500 random bodies, split at random",
  ["dkimverify"],
  async () => {
    const piece = fc.constantFrom("a", "é", " ", "\t", "\r", "\n", "\r\n", "\r\n\r\n", "  \r\n");
    const bodies = fc.sample(fc.array(piece, { maxLength: 40 }).map((p) => enc(p.join(""))), {
      numRuns: 500,
      seed: 15,
    });
    const b64 = (b: Uint8Array) => btoa(String.fromCharCode(...b));
    const res = await runPython(["-c", PY_CANON], enc(JSON.stringify(bodies.map(b64))));
    assert(res.ok, res.output);
    const theirs = JSON.parse(res.output) as [string, string][];
    for (const [i, body] of bodies.entries()) {
      const cut = Math.floor(body.length / 3);
      const pieces = [body.subarray(0, cut), body.subarray(cut)];
      const [simple, relaxed] = theirs[i] as [string, string];
      assertEquals(b64(latin1(canonBody("simple", pieces))), simple, `simple #${i}`);
      assertEquals(b64(latin1(canonBody("relaxed", pieces))), relaxed, `relaxed #${i}`);
    }
  },
);

function latin1(s: string): Uint8Array {
  return Uint8Array.from(s, (c) => c.charCodeAt(0));
}
