import assert from "node:assert/strict";
import {
  buildFailureDsn,
  type FailureDsnInput,
  headerBlock,
  MAX_LINE_OCTETS,
  rfc5322Date,
} from "../../src/queue/dsn.ts";

const enc = new TextEncoder();

const INPUT: FailureDsnInput = {
  reportingMta: "mx.example.net",
  reportId: "01ABCDEF",
  originalId: "01QUEUEID",
  originalSender: "alice@example.org",
  envid: "ENV1",
  arrivalDate: Date.UTC(2025, 0, 2, 3, 4, 5),
  date: Date.UTC(2025, 1, 2, 3, 4, 5),
  recipients: [
    { address: "bob@customer.test", lastReply: "451 4.3.0 Try later" },
    { address: "carol@customer.test", orcpt: "rfc822;carol@customer.test" },
  ],
  returned: {
    kind: "headers",
    bytes: enc.encode(`Subject: hi\r\nX-Long: ${"z".repeat(2000)}\r\n\r\n`),
  },
};

/** A header block parsed leniently: unfolded fields, names lower-cased. */
function fields(block: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of block.replace(/\r\n[ \t]/g, " ").split("\r\n")) {
    if (line === "") continue;
    const colon = line.indexOf(":");
    assert.ok(colon > 0, `a header field: ${line}`);
    const name = line.slice(0, colon).toLowerCase();
    out.set(name, [...(out.get(name) ?? []), line.slice(colon + 1).trim()]);
  }
  return out;
}

/** Splits a MIME message: top headers, and each part's headers and body. */
function parseMultipart(text: string) {
  const split = text.indexOf("\r\n\r\n");
  const top = fields(text.slice(0, split + 2));
  const type = top.get("content-type")?.[0] ?? "";
  const boundary = /boundary="([^"]+)"/.exec(type)?.[1];
  assert.ok(boundary, "a boundary parameter");
  const body = text.slice(split + 4);
  const closing = `\r\n--${boundary}--\r\n`;
  assert.ok(body.endsWith(closing), "the closing delimiter ends the message");
  const parts = body.slice(0, -closing.length).split(`\r\n--${boundary}\r\n`).slice(1)
    .map((p) => {
      const end = p.indexOf("\r\n\r\n");
      return { headers: fields(p.slice(0, end + 2)), body: p.slice(end + 4) };
    });
  return { top, type, parts };
}

Deno.test("buildFailureDsn() is a multipart/report with the RFC 3464 fields", () => {
  const bytes = buildFailureDsn(INPUT);
  const text = new TextDecoder().decode(bytes);
  const { top, type, parts } = parseMultipart(text);
  assert.match(type, /^multipart\/report; report-type=delivery-status;/);
  assert.deepEqual(top.get("auto-submitted"), ["auto-replied"]);
  assert.deepEqual(top.get("to"), ["<alice@example.org>"]);
  assert.deepEqual(top.get("mime-version"), ["1.0"]);
  assert.equal(parts.length, 3);
  const [explanation, status, headers] = parts;
  assert.equal(explanation?.headers.get("content-type")?.[0], "text/plain; charset=us-ascii");
  assert.equal(status?.headers.get("content-type")?.[0], "message/delivery-status");
  assert.equal(headers?.headers.get("content-type")?.[0], "text/rfc822-headers");

  // message/delivery-status: per-message group, blank line, one group per recipient.
  const groups = (status?.body ?? "").split("\r\n\r\n").filter((g) => g.trim() !== "");
  assert.equal(groups.length, 3);
  const perMessage = fields(groups[0] + "\r\n");
  assert.deepEqual(perMessage.get("reporting-mta"), ["dns; mx.example.net"]);
  assert.deepEqual(perMessage.get("original-envelope-id"), ["ENV1"]);
  assert.deepEqual(perMessage.get("arrival-date"), ["Thu, 02 Jan 2025 03:04:05 +0000"]);
  const bob = fields(groups[1] + "\r\n");
  assert.deepEqual(bob.get("final-recipient"), ["rfc822; bob@customer.test"]);
  assert.deepEqual(bob.get("action"), ["failed"]);
  assert.deepEqual(bob.get("status"), ["5.4.7"]);
  assert.deepEqual(bob.get("diagnostic-code"), ["smtp; 451 4.3.0 Try later"]);
  const carol = fields(groups[2] + "\r\n");
  assert.deepEqual(carol.get("original-recipient"), ["rfc822;carol@customer.test"]);
  assert.equal(carol.get("diagnostic-code"), undefined, "no reply known: no Diagnostic-Code");
  assert.match(headers?.body ?? "", /^Subject: hi\r\n/);
});

Deno.test("buildFailureDsn() ends every line in CRLF and keeps lines within 998 octets", () => {
  const bytes = buildFailureDsn({
    ...INPUT,
    recipients: [{ address: "x@y.test", lastReply: "550 " + "w".repeat(3000) }],
    returned: { kind: "full", bytes: enc.encode("A: b\nbare\rcr\r\n\r\nbody") },
  });
  let lineStart = 0;
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 0x0d) assert.equal(bytes[i + 1], 0x0a, `bare CR at ${i}`);
    if (bytes[i] === 0x0a) {
      assert.equal(bytes[i - 1], 0x0d, `bare LF at ${i}`);
      assert.ok(i - 1 - lineStart <= MAX_LINE_OCTETS, `line at ${lineStart} is too long`);
      lineStart = i + 1;
    }
  }
  assert.equal(lineStart, bytes.length, "the report ends with CRLF");
  const text = new TextDecoder().decode(bytes);
  assert.match(text, /^Content-Type: message\/rfc822\r$/m);
  assert.match(text, /^bare\r\ncr\r\n/m);
});

Deno.test("buildFailureDsn() writes control characters of fields as '?', a UTF-8 address as RFC 6533's", () => {
  const text = new TextDecoder().decode(buildFailureDsn({
    ...INPUT,
    recipients: [{ address: "j\u00fcrgen@x.test", lastReply: "550 bad\r\nInjected: yes" }],
  }));
  assert.match(text, /^Final-Recipient: utf-8; j\\x\{FC\}rgen@x\.test\r$/m);
  assert.doesNotMatch(text, /^Injected:/m, "a reply cannot add a field");
});

Deno.test("headerBlock() stops at the empty line, or at a line end within the limit", () => {
  const rows = [
    { input: "A: 1\r\nB: 2\r\n\r\nbody", max: 100, want: "A: 1\r\nB: 2\r\n\r\n", why: "CRLF" },
    { input: "A: 1\n\nbody", max: 100, want: "A: 1\n\n", why: "bare LF message" },
    { input: "A: 1\r\nB: 2\r\nC: 3", max: 9, want: "A: 1\r\n", why: "cut at a line end" },
    { input: "A: 1\r\nB", max: 100, want: "A: 1\r\nB", why: "all of a short message" },
  ];
  for (const row of rows) {
    const got = new TextDecoder().decode(headerBlock(enc.encode(row.input), row.max));
    assert.equal(got, row.want, row.why);
  }
});

Deno.test("rfc5322Date() writes UTC with a numeric zone", () => {
  assert.equal(rfc5322Date(0), "Thu, 01 Jan 1970 00:00:00 +0000");
});
