/**
 * Every header we write or prepend — Received (MX and customer receiver), Return-Path and
 * Delivered-To (Maildir), the whole failure DSN with its MIME parts — is checked by a strict
 * RFC 5322 header parser over generated inputs (#10): ours are well-formed, no line is over
 * 998 octets, and the original fields are all still header fields after ours.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import fc from "fast-check";
import { formatReceived } from "../../src/smtp/trace.ts";
import { parseMailArgument, parseRcptArgument } from "../../src/wire/address.ts";
import { MaildirSink } from "../../src/smtp/sinks/maildir.ts";
import { buildFailureDsn, headerBlock } from "../../src/queue/dsn.ts";
import type { HeaderField } from "../_helpers/rfc5322_headers.ts";
import { mustParseHeaders, parseHeaderSection } from "../_helpers/rfc5322_headers.ts";
import { startReady } from "./_session.ts";
import { runs } from "../fuzz/_runs.ts";
import { sessionInfo } from "../_helpers/session_info.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

// ---- generators -------------------------------------------------------------------------

const anyText = (max: number) =>
  fc.oneof(
    fc.string({ unit: "binary", maxLength: max }),
    fc.string({ unit: "grapheme", maxLength: max }),
    fc.string({ maxLength: max }),
  );

const ATOM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789!#$%&'*+-/=?^_`{|}~";
const atom = (min: number, max: number) =>
  fc.string({ unit: fc.constantFrom(...ATOM), minLength: min, maxLength: max });
const label = fc.stringMatching(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/);
const localPart = fc.oneof(
  fc.array(atom(1, 20), { minLength: 1, maxLength: 4 }).map((a) => a.join(".")),
  // Quoted-string: spaces, specials, escaped quote and backslash (RFC 5321 §4.1.2).
  fc.string({ unit: fc.constantFrom(..." ()<>[]:;@,.azAZ09", '\\"', "\\\\"), maxLength: 40 })
    .map((s) => `"${s}"`),
  fc.string({ unit: fc.constantFrom("é", "ü", "日", "本", "ß", "a", "😀"), minLength: 1 }),
);
const domain = fc.oneof(
  fc.array(label, { minLength: 2, maxLength: 6 }).map((a) => a.join(".")),
  fc.array(fc.constantFrom("bücher", "日本", "exämple", "org"), { minLength: 2, maxLength: 3 })
    .map((a) => a.join(".")),
  fc.constantFrom("[192.0.2.1]", "[IPv6:2001:db8::1]"),
  // Near the 255-octet domain limit: long labels.
  fc.array(fc.constant("a".repeat(63)), { minLength: 3, maxLength: 4 }).map((a) => a.join(".")),
);
/** An address as the receiver would accept it (parsed by the real RCPT parser). */
const address = fc.tuple(localPart, domain).map(([l, d]) => {
  const r = parseRcptArgument(`TO:<${l}@${d}>`);
  return r.ok ? r.mailbox.address : `${l.replace(/[^a-z]/g, "") || "x"}@example.org`;
});
const sender = fc.oneof(fc.constant(""), address);

const fieldName = fc.stringMatching(/^[A-Za-z][A-Za-z0-9-]{0,40}$/);
/** A field value: words, folded before 78 columns, sometimes one long unbreakable word. */
const fieldValue = fc.oneof(
  fc.array(fc.stringMatching(/^[!-~]{1,30}$/), { minLength: 1, maxLength: 40 }).map((words) => {
    const lines: string[] = [];
    let line = "";
    for (const w of words) {
      if (line !== "" && line.length + w.length > 70) {
        lines.push(line);
        line = "";
      }
      line += " " + w;
    }
    lines.push(line);
    return lines.join("\r\n");
  }),
  fc.stringMatching(/^[!-~]{900,980}$/).map((w) => " " + w),
);
const originalHeaders = fc.array(fc.tuple(fieldName, fieldValue), { minLength: 1, maxLength: 8 });

function originalMessage(fields: readonly [string, string][], body: string): Uint8Array {
  return enc.encode(fields.map(([n, v]) => `${n}:${v}\r\n`).join("") + "\r\n" + body);
}

function assertFieldsKept(got: readonly HeaderField[], want: readonly [string, string][]): void {
  assertEquals(got.map((f) => [f.name, f.value]), want.map(([n, v]) => [n, v]));
}

const SESSION = sessionInfo({ isSecure: true, protocol: "ESMTPS" });

// ---- the parser itself ------------------------------------------------------------------

Deno.test("the strict header parser refuses what is not one header block", async (t) => {
  const rows: { name: string; input: string; ok: boolean }[] = [
    { name: "fields, folding, empty line", input: "A: 1\r\n\tb\r\nC:\r\n\r\nbody", ok: true },
    { name: "a line without a colon", input: "A: 1\r\n; date\r\n\r\n", ok: false },
    { name: "a continuation first", input: " x\r\nA: 1\r\n\r\n", ok: false },
    { name: "a bare LF", input: "A: 1\nB: 2\r\n\r\n", ok: false },
    { name: "a bare CR", input: "A: 1\rB: 2\r\n\r\n", ok: false },
    { name: "a space in the field name", input: "A B: 1\r\n\r\n", ok: false },
    { name: "998 octets", input: `A: ${"x".repeat(995)}\r\n\r\n`, ok: true },
    { name: "999 octets", input: `A: ${"x".repeat(996)}\r\n\r\n`, ok: false },
  ];
  for (const row of rows) {
    await t.step(row.name, () => {
      assertEquals(parseHeaderSection(enc.encode(row.input)).ok, row.ok);
    });
  }
});

// ---- Received --------------------------------------------------------------------------

Deno.test("formatReceived with two recipients (no for clause) stays one header (#10)", () => {
  const out = formatReceived({
    heloName: "client.test",
    remoteAddress: "192.0.2.1",
    hostname: "mx.test",
    protocol: "ESMTP",
    id: "Q1",
    date: new Date(Date.UTC(2024, 0, 2, 3, 4, 5)),
  });
  const parsed = mustParseHeaders(
    new Uint8Array([...out, ...originalMessage([["Subject", " x"], ["Date", " y"]], "hi\r\n")]),
  );
  assertEquals(parsed.fields.map((f) => f.name), ["Received", "Subject", "Date"]);
  assertEquals(
    dec.decode(out),
    "Received: from client.test ([192.0.2.1])\r\n" +
      "\tby mx.test with ESMTP id Q1; Tue, 2 Jan 2024 03:04:05 +0000\r\n",
  );
});

Deno.test("formatReceived is one well-formed field before the original ones (property, #10)", () => {
  fc.assert(
    fc.property(
      anyText(600),
      anyText(80),
      fc.option(anyText(300), { nil: undefined }),
      anyText(300),
      fc.constantFrom("SMTP", "ESMTP", "ESMTPS"),
      anyText(300),
      fc.option(fc.oneof(address, anyText(400)), { nil: undefined }),
      originalHeaders,
      (heloName, remoteAddress, reverseDns, hostname, protocol, id, recipient, fields) => {
        const trace = formatReceived({
          heloName,
          remoteAddress,
          ...(reverseDns !== undefined ? { reverseDns } : {}),
          hostname,
          protocol,
          id,
          ...(recipient !== undefined ? { recipient } : {}),
          date: new Date(0),
        });
        const message = new Uint8Array([...trace, ...originalMessage(fields, "body\r\n")]);
        const parsed = mustParseHeaders(message);
        assertEquals(parsed.fields[0]?.name, "Received");
        assertFieldsKept(parsed.fields.slice(1), fields);
        assert(parsed.hasBody);
      },
    ),
    { numRuns: runs(1500) },
  );
});

Deno.test("the receiver's Received: header over DATA and BDAT, 1..N recipients (property, #10)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.stringMatching(/^[!-~]{1,200}$/),
      sender,
      fc.array(address, { minLength: 1, maxLength: 5 }),
      originalHeaders,
      fc.boolean(),
      async (helo, from, recipients, fields, isBdat) => {
        const s = await startReady({
          options: { addTraceHeader: true, maxRecipients: 10, maxMessageBytes: 100_000 },
        });
        try {
          assert((await s.client.command(`EHLO ${helo}`)).startsWith("250"));
          const utf8 = /[^ -~]/.test(from + recipients.join("")) ? " SMTPUTF8" : "";
          assertEquals((await s.client.command(`MAIL FROM:<${from}>${utf8}`)).slice(0, 3), "250");
          for (const r of recipients) {
            assertEquals((await s.client.command(`RCPT TO:<${r}>`)).slice(0, 3), "250");
          }
          const original = originalMessage(fields, "body\r\n");
          if (isBdat) {
            await s.client.send(`BDAT ${original.length} LAST\r\n`);
            await s.client.send(original);
          } else {
            assertEquals((await s.client.command("DATA")).slice(0, 3), "354");
            await s.client.send(original);
            await s.client.send(".\r\n");
          }
          assertEquals((await s.client.reply()).slice(0, 3), "250");
          const parsed = mustParseHeaders(s.sink.accepted[0]?.body() ?? new Uint8Array());
          assertEquals(parsed.fields[0]?.name, "Received");
          assertFieldsKept(parsed.fields.slice(1), fields);
        } finally {
          await s.end();
        }
      },
    ),
    { numRuns: runs(60) },
  );
});

// ---- Return-Path and Delivered-To (Maildir) ---------------------------------------------

/** A Maildir file with its LF line ends turned back into CRLF (the wire form). */
function lfToCrlf(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (const b of bytes) {
    if (b === 10) out.push(13);
    out.push(b);
  }
  return Uint8Array.from(out);
}

Deno.test("Maildir's Return-Path and Delivered-To are well-formed before the original fields (property, #10)", async () => {
  const root = await Deno.makeTempDir({ prefix: "odmr-hdr-" });
  try {
    await fc.assert(
      fc.asyncProperty(
        sender,
        fc.array(address, { minLength: 1, maxLength: 6 }),
        originalHeaders,
        async (from, recipients, fields) => {
          const mail = parseMailArgument(`FROM:<${from}>`);
          assert(mail.ok);
          const sink = new MaildirSink({ path: root, hostname: "pi.home" });
          const tx = await sink.begin({ address: mail.mailbox.address, params: {} }, SESSION);
          assert("write" in tx);
          for (const r of recipients) await tx.addRecipient({ address: r, domain: "x" });
          await tx.write(originalMessage(fields, "body\r\n"));
          assertEquals((await tx.finish()).code, 250);
          const path = `${root}/new/${tx.id}`;
          const file = await Deno.readFile(path);
          await Deno.remove(path);
          const parsed = mustParseHeaders(lfToCrlf(file));
          assertEquals(
            parsed.fields.slice(0, recipients.length + 1).map((f) => f.name),
            ["Return-Path", ...recipients.map(() => "Delivered-To")],
          );
          assertFieldsKept(parsed.fields.slice(recipients.length + 1), fields);
        },
      ),
      { numRuns: runs(80) },
    );
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

// ---- failure DSN ------------------------------------------------------------------------

/** Splits a multipart body at `--boundary` lines; returns the parts (without the delimiters). */
function mimeParts(body: Uint8Array, boundary: string): Uint8Array[] {
  const text = dec.decode(body);
  const delimiter = `\r\n--${boundary}`;
  const all = ("\r\n" + text).split(delimiter);
  const parts: Uint8Array[] = [];
  for (const piece of all.slice(1)) {
    if (piece.startsWith("--")) break; // close-delimiter
    assert(piece.startsWith("\r\n"), "a delimiter line ends in CRLF");
    parts.push(enc.encode(piece.slice(2) + "\r\n"));
  }
  return parts;
}

Deno.test("a failure or delay DSN and each of its MIME parts have strict header blocks (property, #10)", () => {
  fc.assert(
    fc.property(
      fc.oneof(fc.stringMatching(/^[a-z0-9.-]{1,60}$/), anyText(300)),
      fc.stringMatching(/^[A-Za-z0-9]{1,40}$/),
      fc.oneof(sender, anyText(400)),
      fc.option(anyText(200), { nil: undefined }),
      fc.array(
        fc.record({
          address: fc.oneof(address, anyText(400)),
          orcpt: fc.option(anyText(300), { nil: undefined }),
          lastReply: fc.option(anyText(1200), { nil: undefined }),
        }),
        { minLength: 1, maxLength: 5 },
      ),
      fc.option(fc.tuple(fc.constantFrom("headers", "full"), originalHeaders), { nil: undefined }),
      fc.constantFrom("expired" as const, "refused" as const, "delayed" as const),
      (host, reportId, originalSender, envid, recipients, returned, reason) => {
        const original = returned === undefined
          ? undefined
          : originalMessage(returned[1], "the body\r\n");
        const dsn = buildFailureDsn({
          reportingMta: host,
          reportId,
          originalId: "Q1",
          originalSender,
          ...(envid !== undefined ? { envid } : {}),
          arrivalDate: 0,
          date: 86_400_000,
          reason,
          ...(reason === "delayed" ? { willRetryUntil: 5 * 86_400_000 } : {}),
          recipients: recipients.map((r) => ({
            address: r.address,
            ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
            ...(r.lastReply !== undefined ? { lastReply: r.lastReply } : {}),
          })),
          ...(returned !== undefined && original !== undefined
            ? {
              returned: {
                kind: returned[0],
                bytes: returned[0] === "full" ? original : headerBlock(original, 64 * 1024),
              },
            }
            : {}),
        });
        const top = mustParseHeaders(dsn);
        assertEquals(top.fields.map((f) => f.name), [
          "From",
          "To",
          "Subject",
          "Date",
          "Message-ID",
          "Auto-Submitted",
          "MIME-Version",
          "Content-Type",
        ]);
        const boundary = `=_dsn_${reportId}`;
        const parts = mimeParts(dsn.subarray(top.bodyOffset), boundary);
        assertEquals(parts.length, returned === undefined ? 2 : 3);
        for (const part of parts) {
          const head = mustParseHeaders(part);
          assert(head.hasBody, "a MIME part's header block ends with an empty line");
          assert(head.fields.some((f) => f.name === "Content-Type"));
        }
        // The report's per-message and per-recipient groups are header-like too (RFC 3464 §2).
        const report = parts[1] ?? new Uint8Array();
        const reportHead = mustParseHeaders(report);
        let rest = report.subarray(reportHead.bodyOffset);
        for (let group = 0; group < 1 + recipients.length; group++) {
          const g = mustParseHeaders(rest);
          rest = rest.subarray(g.bodyOffset);
          if (group === 0) continue;
          const action = g.fields.find((f) => f.name === "Action")?.value.trim();
          assertEquals(action, reason === "delayed" ? "delayed" : "failed");
          const retry = g.fields.find((f) => f.name === "Will-Retry-Until");
          assertEquals(retry !== undefined, reason === "delayed");
        }
        if (returned !== undefined) {
          const inner = parts[2] ?? new Uint8Array();
          const returnedFields = mustParseHeaders(
            inner.subarray(mustParseHeaders(inner).bodyOffset),
          );
          assertFieldsKept(returnedFields.fields, returned[1]);
        }
      },
    ),
    { numRuns: runs(1000) },
  );
});
