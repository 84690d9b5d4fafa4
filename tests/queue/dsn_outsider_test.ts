/**
 * Our failure and delay reports as an outsider reads them: Python's own `email` package
 * (tests/_helpers/dsn_check.py, policies strict and default, its defect lists) parses each, and
 * the report fields are checked against RFC 3464 (Reporting-MTA, Arrival-Date, Final-Recipient,
 * Action, Status, Diagnostic-Code), RFC 6522 (multipart/report, its boundary), RFC 5322 (lines
 * of at most 998 octets, CRLF) and RFC 2045 §6 (8-bit octets only where a part and the message
 * say 8bit). Reports built as every caller builds them: returnedContent (src/queue/bounce.ts)
 * for RET=HDRS and RET=FULL.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { reportHead, reportParams, returnedContent } from "../../src/queue/bounce.ts";
import { buildFailureDsn, type FailureDsnInput } from "../../src/queue/dsn.ts";
import { planEnvelope } from "../../src/smtp/_sender_commands.ts";
import { heloCapabilities } from "../../src/wire/ehlo.ts";
import { dkimPython } from "../_helpers/dkim.ts";
import { toolTest } from "../_helpers/tools.ts";

const SCRIPT = new URL("../_helpers/dsn_check.py", import.meta.url).pathname;
const enc = (s: string) => new TextEncoder().encode(s);

interface Checked {
  readonly problems: string[];
  readonly parts: string[];
  readonly recipients: Record<string, string>[];
  readonly message: Record<string, string>;
  readonly to: string[];
  readonly returned: { type: string; encoding: string; text?: string } | null;
}

async function check(python: string, report: Uint8Array): Promise<Checked> {
  const child = new Deno.Command(python, {
    args: [SCRIPT],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(report);
  await w.close();
  const out = await child.output();
  const text = new TextDecoder().decode(out.stdout);
  assert(out.code === 0, text + new TextDecoder().decode(out.stderr));
  return JSON.parse(text) as Checked;
}

const HEAD = {
  reportingMta: "relay.example.net",
  reportId: "01REPORT",
  originalId: "01ORIGINAL",
  originalSender: "alice@example.org",
  arrivalDate: Date.UTC(2026, 10, 30, 1, 2, 3),
  date: Date.UTC(2026, 10, 30, 2, 3, 4),
};
const ASCII = enc(
  "From: a@example.org\r\nSubject: hi\r\nX-Long: " + "x".repeat(1500) + "\r\n\r\nbody\r\n" +
    "y".repeat(2000) + "\r\n",
);
/** 8-bit original: Latin-1-ish UTF-8 in a header and the body (BODY=8BITMIME, SMTPUTF8). */
const EIGHT_BIT = enc(
  "From: Jörg <joerg@example.org>\r\nSubject: Grüße\r\nContent-Type: text/plain; charset=utf-8\r\n" +
    "Content-Transfer-Encoding: 8bit\r\n\r\nHällo\r\n",
);
const returned = (ret: "FULL" | undefined, bytes: Uint8Array) =>
  returnedContent({ params: ret === undefined ? {} : { ret }, size: bytes.length }, bytes);

const CASES: { what: string; input: FailureDsnInput }[] = [
  {
    what: "refused, RET=HDRS",
    input: {
      ...HEAD,
      reason: "refused",
      envid: "ENV1",
      recipients: [{
        address: "bob@dest.test",
        orcpt: "rfc822;bob@dest.test",
        lastReply: "550 5.1.1 No such user",
        status: "5.1.1",
      }],
      returned: returned(undefined, ASCII),
    },
  },
  {
    what: "refused, RET=FULL",
    input: {
      ...HEAD,
      reason: "refused",
      recipients: [{ address: "bob@dest.test", lastReply: "550 5.7.1 No", status: "5.7.1" }],
      returned: returned("FULL", ASCII),
    },
  },
  {
    what: "expired",
    input: {
      ...HEAD,
      recipients: [{ address: "bob@dest.test", lastReply: "451 4.4.1 No mail server answered" }],
      returned: returned(undefined, ASCII),
    },
  },
  {
    what: "delayed",
    input: {
      ...HEAD,
      reason: "delayed",
      willRetryUntil: Date.UTC(2026, 11, 5),
      recipients: [{ address: "bob@dest.test", lastReply: "451 4.7.1 Greylisted" }],
      returned: returned(undefined, ASCII),
    },
  },
  {
    what: "an 8-bit original, RET=HDRS",
    input: {
      ...HEAD,
      reason: "refused",
      recipients: [{ address: "bob@dest.test", lastReply: "550 5.1.1 No", status: "5.1.1" }],
      returned: returned(undefined, EIGHT_BIT),
    },
  },
  {
    what: "an 8-bit original, RET=FULL",
    input: {
      ...HEAD,
      reason: "refused",
      recipients: [{ address: "bob@dest.test", lastReply: "550 5.1.1 No", status: "5.1.1" }],
      returned: returned("FULL", EIGHT_BIT),
    },
  },
  {
    what: "a multi-line reply and a very long one",
    input: {
      ...HEAD,
      reason: "refused",
      recipients: [
        {
          address: "bob@dest.test",
          // As the outbound worker stores a multi-line reply (formatReplyText, trimmed).
          lastReply: "550-5.1.1 The email account that you tried to reach does not exist.\r\n" +
            "550-5.1.1 Please try double-checking the recipient's email address.\r\n" +
            "550 5.1.1 https://support.example/?p=NoSuchUser",
          status: "5.1.1",
        },
        {
          address: "carol@dest.test",
          lastReply: "550 5.7.1 " + "Rejected by policy. ".repeat(80),
          status: "5.7.1",
        },
      ],
    },
  },
];

await toolTest("failure and delay reports pass Python's email parser (strict)", [
  "dkimverify",
], async (t) => {
  const python = await dkimPython();
  for (const c of CASES) {
    await t.step(c.what, async () => {
      const got = await check(python, buildFailureDsn(c.input));
      assertEquals(got.problems, []);
      assertEquals(got.parts.slice(0, 2), ["text/plain", "message/delivery-status"]);
      assertEquals(got.recipients.length, c.input.recipients.length);
    });
  }
  await t.step(
    "a multi-line reply is one Diagnostic-Code, its lines joined by spaces",
    async () => {
      const c = CASES.find((x) => x.what.startsWith("a multi-line"))!;
      const got = await check(python, buildFailureDsn(c.input));
      assertEquals(
        got.recipients[0]?.["Diagnostic-Code"],
        "smtp; 550-5.1.1 The email account that you tried to reach does not exist. " +
          "550-5.1.1 Please try double-checking the recipient's email address. " +
          "550 5.1.1 https://support.example/?p=NoSuchUser",
      );
      // A long one is folded, not cut: every word of it is there.
      assertEquals(
        got.recipients[1]?.["Diagnostic-Code"],
        "smtp; 550 5.7.1 " + "Rejected by policy. ".repeat(80).trim(),
      );
    },
  );
  await t.step(
    "a UTF-8 recipient (SMTPUTF8) is named by its utf-8 address, 7-bit (RFC 6533 §3)",
    async () => {
      const got = await check(
        python,
        buildFailureDsn({
          ...HEAD,
          reason: "refused",
          recipients: [{ address: "bøb+x@dést.test", lastReply: "550 5.1.1 No", status: "5.1.1" }],
        }),
      );
      assertEquals(got.problems, []);
      // utf-8-addr-xtext: each character outside QCHAR (non-ASCII, "+", "=", "\\") as \x{HEX}.
      assertEquals(
        got.recipients[0]?.["Final-Recipient"],
        "utf-8; b\\x{F8}b\\x{2B}x@d\\x{E9}st.test",
      );
    },
  );
  await t.step(
    "Original-Recipient and Original-Envelope-Id name what ORCPT and ENVID encode, decoded " +
      "from xtext (RFC 3461 §4.2, §4.4; RFC 3464 §2.2.1, §2.3.1)",
    async () => {
      const got = await check(
        python,
        buildFailureDsn({
          ...HEAD,
          reason: "refused",
          envid: "ENV+2B1+3D2",
          recipients: [
            { address: "bob+x@dest.test", orcpt: "rfc822;bob+2Bx@dest.test", lastReply: "550 No" },
            // RFC 6533 §3: a utf-8 ORCPT is its utf-8-addr-xtext, the 7-bit form this part keeps.
            { address: "bøb@dest.test", orcpt: "utf-8;b\\x{F8}b@dest.test", lastReply: "550 No" },
            // Decoded it would hold a line break: it is named as received.
            { address: "c@dest.test", orcpt: "rfc822;c+0D+0Ax@dest.test", lastReply: "550 No" },
          ],
        }),
      );
      assertEquals(got.problems, []);
      assertEquals(got.message["Original-Envelope-Id"], "ENV+1=2");
      assertEquals(got.recipients.map((r) => r["Original-Recipient"]), [
        "rfc822;bob+x@dest.test",
        "utf-8;b\\x{F8}b@dest.test",
        "rfc822;c+0D+0Ax@dest.test",
      ]);
    },
  );
  await t.step(
    "a UTF-8 sender is named in To: as it is (RFC 6532 §3.2), and the report goes with SMTPUTF8",
    async () => {
      const sender = "jörg@exämple.org";
      const bytes = buildFailureDsn({
        ...HEAD,
        originalSender: sender,
        reason: "refused",
        recipients: [{ address: "bob@dest.test", lastReply: "550 5.1.1 No", status: "5.1.1" }],
        returned: returned(undefined, EIGHT_BIT),
      });
      const got = await check(python, bytes);
      assertEquals(got.problems, []);
      assertEquals(got.to, [sender]);
      // As bounceFailed queues it: from <>, to the sender.
      const report = {
        mailFrom: "",
        params: reportParams(bytes),
        size: bytes.length,
        recipients: [{ id: 1, address: sender }],
      };
      const caps = { ...heloCapabilities({ code: 250, lines: ["relay.test"] }), isExtended: true };
      const plan = planEnvelope(report, { ...caps, eightBitMime: true, smtpUtf8: true });
      assert(plan.kind === "send" && plan.mailLine.endsWith(" SMTPUTF8"), JSON.stringify(plan));
      // A peer without SMTPUTF8 does not get it.
      assertEquals(planEnvelope(report, { ...caps, eightBitMime: true }).kind, "refused");
    },
  );
  await t.step(
    "a report about an SMTPUTF8 original has RFC 6533's types (message/global-delivery-status, " +
      "message/global-headers or message/global); its 8-bit returned part is base64, so the " +
      "report needs neither SMTPUTF8 nor 8BITMIME and reaches a peer without them (RFC 6533 §4)",
    async () => {
      const original = {
        id: "01ORIGINAL",
        mailFrom: "alice@example.org",
        receivedAt: HEAD.arrivalDate,
        params: { smtputf8: true, body: "8BITMIME" } as const,
      };
      const caps = { ...heloCapabilities({ code: 250, lines: ["relay.test"] }), isExtended: true };
      for (const ret of [undefined, "FULL"] as const) {
        const params = { ...original.params, ...(ret === undefined ? {} : { ret }) };
        const bytes = buildFailureDsn({
          ...reportHead({ ...original, params }, HEAD.reportingMta, HEAD.reportId, HEAD.date),
          reason: "refused",
          recipients: [{ address: "bøb@dest.test", lastReply: "550 5.1.1 No", status: "5.1.1" }],
          returned: returnedContent({ params, size: EIGHT_BIT.length }, EIGHT_BIT),
        });
        const got = await check(python, bytes);
        assertEquals(got.problems, []);
        assertEquals(got.parts, [
          "text/plain",
          "message/global-delivery-status",
          ret === "FULL" ? "message/global" : "message/global-headers",
        ]);
        assertEquals(got.recipients[0]?.["Final-Recipient"], "utf-8; b\\x{F8}b@dest.test");
        assertEquals(got.returned?.encoding, "base64");
        const text = new TextDecoder().decode(EIGHT_BIT);
        assertEquals(
          got.returned?.text,
          ret === "FULL" ? text : text.slice(0, text.indexOf("\r\n\r\n") + 4),
        );
        assert(bytes.every((b) => b < 0x80), "the report is 7-bit");
        const report = {
          mailFrom: "",
          params: reportParams(bytes),
          size: bytes.length,
          recipients: [{ id: 1, address: original.mailFrom }],
        };
        // A peer with neither SMTPUTF8 nor 8BITMIME gets it as it is.
        const plan = planEnvelope(report, caps);
        assert(plan.kind === "send", JSON.stringify(plan));
        assertEquals(plan.mailLine, "MAIL FROM:<>");
      }
    },
  );
  await t.step(
    "a report about an SMTPUTF8 original to a UTF-8 sender goes with SMTPUTF8 anyway: its " +
      "message/global-headers part stays 8bit",
    async () => {
      const params = { smtputf8: true } as const;
      const bytes = buildFailureDsn({
        ...reportHead(
          { id: "01ORIGINAL", mailFrom: "jörg@exämple.org", receivedAt: HEAD.arrivalDate, params },
          HEAD.reportingMta,
          HEAD.reportId,
          HEAD.date,
        ),
        reason: "refused",
        recipients: [{ address: "bob@dest.test", lastReply: "550 5.1.1 No", status: "5.1.1" }],
        returned: returnedContent({ params, size: EIGHT_BIT.length }, EIGHT_BIT),
      });
      const got = await check(python, bytes);
      assertEquals(got.problems, []);
      assertEquals(got.parts, [
        "text/plain",
        "message/global-delivery-status",
        "message/global-headers",
      ]);
      assertEquals(got.returned?.encoding, "8bit");
      assertEquals(reportParams(bytes).body, "8BITMIME");
    },
  );
});
