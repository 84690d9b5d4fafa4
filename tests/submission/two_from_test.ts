/**
 * RFC 5322 §3.6 allows exactly one From field. A submitted message with two was queued, and
 * the outbound DKIM signer signed it with the first one's domain (`d=`): a reader (and DMARC at
 * a receiver that looks at another From) could be shown the second author under our user's
 * signature. The submission port now refuses it at the end of data with `554 5.6.0`, at any
 * chunking of the header section, and the queue never keeps it; one From passes.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { SubmissionRate } from "../../src/submission/rate.ts";
import { SubmissionSink } from "../../src/submission/sink.ts";
import { FakeSink } from "../_helpers/fake_sink.ts";
import { recordingLogger } from "../_helpers/recording_logger.ts";
import { sessionInfo } from "../_helpers/session_info.ts";

const enc = new TextEncoder();

/** Submits `message` in chunks of `chunk` octets as alice: the final reply and the inner sink. */
async function submit(message: string, chunk: number) {
  const inner = new FakeSink();
  const sink = new SubmissionSink({
    inner,
    domainsOf: () => ["example.org"],
    hasUser: () => true,
    rate: new SubmissionRate({ messagesPerHour: 100, recipientsPerHour: 100 }),
    log: recordingLogger([]),
  });
  const session = sessionInfo({ authenticatedUser: "alice", protocol: "ESMTPA" });
  const tx = await sink.begin({ address: "alice@example.org", params: {} }, session);
  if ("code" in tx) throw new Error(`MAIL refused: ${tx.code}`);
  assertEquals(
    (await tx.addRecipient({ address: "b@dest.example", domain: "dest.example" })).code,
    250,
  );
  const bytes = enc.encode(message);
  for (let at = 0; at < bytes.length; at += chunk) await tx.write(bytes.slice(at, at + chunk));
  const final = await tx.finish();
  return { final, stored: inner.accepted.length, aborted: inner.transactions[0]?.aborted ?? 0 };
}

const TWO = "From: Alice <alice@example.org>\r\nTo: b@dest.example\r\n" +
  "from:  CEO <ceo@bank.example>\r\nSubject: pay\r\n\r\nFrom: in the body is no field\r\n";
const ONE = "From: Alice <alice@example.org>\r\nTo: b@dest.example\r\nSubject: hi\r\n\r\n" +
  "From: in the body is no field\r\nFrom: nor this\r\n";

Deno.test("submission refuses a message with two From fields (554 5.6.0), at any chunking", async () => {
  for (let chunk = 1; chunk <= TWO.length; chunk++) {
    const r = await submit(TWO, chunk);
    assertEquals(
      [r.final.code, r.final.enhanced, r.stored, r.aborted],
      [554, "5.6.0", 0, 1],
      `chunks of ${chunk}`,
    );
  }
});

Deno.test("submission takes a message with one From field, whatever its body says", async () => {
  for (const chunk of [1, 5, 64, ONE.length]) {
    const r = await submit(ONE, chunk);
    assertEquals([r.final.code, r.stored], [250, 1], `chunks of ${chunk}`);
  }
});
