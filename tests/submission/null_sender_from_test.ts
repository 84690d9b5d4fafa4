/**
 * `MAIL FROM:<>` on the submission port: the header From is the only identity such a message
 * claims, and a receiver checks SPF for `<>` against our HELO name (RFC 7208 §2.4), which a
 * relaxed DMARC policy of the operator's own domain aligns with. Any authenticated user could
 * send `<>` mail "From: security@<the operator's domain>" (or another user's domain) that
 * passed. Now every domain its From fields name must be one of the user's, as the envelope
 * sender must be for other mail (`553 5.7.1` at MAIL there, `550 5.7.1` at the end of data
 * here); the user's own bounces and auto-replies pass. Mail with a reverse-path is unchanged.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { SubmissionRate } from "../../src/submission/rate.ts";
import { SubmissionSink } from "../../src/submission/sink.ts";
import { FakeSink } from "../_helpers/fake_sink.ts";
import { recordingLogger } from "../_helpers/recording_logger.ts";
import { sessionInfo } from "../_helpers/session_info.ts";

const enc = new TextEncoder();

/** Submits `head` + a body as alice (example.org, bücher.example) with reverse-path `from`. */
async function submit(
  from: string,
  head: string,
): Promise<{ code: number; enhanced?: string; stored: number }> {
  const inner = new FakeSink();
  const sink = new SubmissionSink({
    inner,
    domainsOf: () => ["example.org", "xn--bcher-kva.example"],
    hasUser: () => true,
    rate: new SubmissionRate({ messagesPerHour: 100, recipientsPerHour: 100 }),
    log: recordingLogger([]),
  });
  const session = sessionInfo({ authenticatedUser: "alice", protocol: "ESMTPA" });
  const tx = await sink.begin({ address: from, params: {} }, session);
  if ("code" in tx) throw new Error(`MAIL refused: ${tx.code}`);
  await tx.addRecipient({ address: "b@dest.example", domain: "dest.example" });
  await tx.write(enc.encode(`${head}Subject: s\r\n\r\nFrom: ceo@bank.example\r\n`));
  const r = await tx.finish();
  return {
    code: r.code,
    ...(r.enhanced === undefined ? {} : { enhanced: r.enhanced }),
    stored: inner.accepted.length,
  };
}

const REFUSED = { code: 550, enhanced: "5.7.1", stored: 0 };

Deno.test("submission: <> mail must be From the user's own domains", async (t) => {
  const rows: { head: string; refused: boolean; why: string }[] = [
    { head: "From: MAILER-DAEMON@example.org\r\n", refused: false, why: "the user's bounce" },
    { head: "From: Alice <Alice@EXAMPLE.ORG.>\r\n", refused: false, why: "case and dot" },
    { head: "From: j@bücher.example\r\n", refused: false, why: "a U-label of the user's" },
    { head: "", refused: false, why: "no From field: no author claimed" },
    { head: "From: security@relay.example.net\r\n", refused: true, why: "the operator's" },
    { head: "From: bob@example.com\r\n", refused: true, why: "another user's domain" },
    { head: "From: a@sub.example.org\r\n", refused: true, why: "a subdomain (as MAIL FROM)" },
    { head: "From: Alice\r\n <a@bank.example>\r\n", refused: true, why: "folded" },
    { head: "From: a@bank.example (Alice)\r\n", refused: true, why: "a comment after it" },
    { head: "From: a@example.org, ceo@bank.example\r\n", refused: true, why: "two mailboxes" },
    {
      head: 'From: "x@example.org" <ceo@bank.example>\r\n',
      refused: true,
      why: "an address in the display name",
    },
    { head: "From: a@[192.0.2.1]\r\n", refused: true, why: "an address literal" },
    { head: "From: undisclosed\r\n", refused: true, why: "no address to check" },
  ];
  for (const row of rows) {
    await t.step(row.why, async () => {
      const got = await submit("", row.head);
      if (row.refused) assertEquals(got, REFUSED);
      else assertEquals([got.code, got.stored], [250, 1]);
    });
  }
});

Deno.test("submission: mail with a reverse-path keeps its header From free (DKIM signs only its own)", async () => {
  const got = await submit("alice@example.org", "From: someone@bank.example\r\n");
  assertEquals([got.code, got.stored], [250, 1]);
});

Deno.test("submission: <> mail: only each mailbox's addr-spec counts, parsed as RFC 5322 says", async (t) => {
  const rows: { head: string; refused: boolean; why: string }[] = [
    {
      head: 'From: "ceo@bank.example" <alice@example.org>\r\n',
      refused: false,
      why: "another's address in a quoted display name",
    },
    {
      head: "From: alice@example.org (ceo@bank.example)\r\n",
      refused: false,
      why: "another's address in a comment",
    },
    { head: 'From: "a@b"@example.org\r\n', refused: false, why: "an @ in a quoted local part" },
    { head: 'From: "Alice, Ops" <a@example.org>\r\n', refused: false, why: "a quoted comma" },
    { head: "From: <a@example.org>\r\n", refused: false, why: "an angle-addr alone" },
    { head: "From: Alice (x)\r\n\t<a@example.org>\r\n", refused: false, why: "folded, a comment" },
    {
      head: "From: ceo@bank.example <alice@example.org>\r\n",
      refused: true,
      why: "an unquoted @ in the display name (not RFC 5322)",
    },
    {
      head: "From: Alice <a@example.org>, Bob <b@bank.example>\r\n",
      refused: true,
      why: "a second mailbox elsewhere",
    },
    { head: "From: Team: a@example.org;\r\n", refused: true, why: "a group (not in From)" },
    { head: "From: Alice <a@example.org\r\n", refused: true, why: "an unclosed angle-addr" },
    { head: 'From: "Alice <a@example.org>\r\n', refused: true, why: "an unclosed quote" },
    { head: "From: Alice <a@example.org> x\r\n", refused: true, why: "words after it" },
  ];
  for (const row of rows) {
    await t.step(row.why, async () => {
      const got = await submit("", row.head);
      if (row.refused) assertEquals(got, REFUSED);
      else assertEquals([got.code, got.stored], [250, 1]);
    });
  }
});
