/**
 * The submission port's hourly recipient allowance counts the recipients it accepted, not the
 * ones it refused: a RCPT the queue refuses (an address trick, a domain that takes no mail, a
 * temporary failure) took a token before the queue decided, so a user whose client tried a few
 * bad addresses found the good ones refused with 450 4.7.1 for the rest of the hour.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { SubmissionRate } from "../../src/submission/rate.ts";
import { RECIPIENT_RATE_REPLY, SubmissionSink } from "../../src/submission/sink.ts";
import { reply } from "../../src/wire/reply.ts";
import { refusingSink } from "../_helpers/fake_sink.ts";
import { recordingLogger } from "../_helpers/recording_logger.ts";
import { sessionInfo } from "../_helpers/session_info.ts";

const REFUSED = reply(550, "5.1.1", "No such user");
const TEMPORARY = reply(451, "4.3.0", "Try again later");

Deno.test("submission: refused recipients take nothing from the hourly recipient allowance", async () => {
  const inner = refusingSink((a) => a.startsWith("bad"), REFUSED);
  const temporary = refusingSink(() => true, TEMPORARY);
  const rate = new SubmissionRate({ messagesPerHour: 10, recipientsPerHour: 2 });
  const sinkOver = (over: typeof inner) =>
    new SubmissionSink({
      inner: over,
      domainsOf: () => ["example.org"],
      hasUser: () => true,
      rate,
      log: recordingLogger([]),
    });
  const session = sessionInfo({ authenticatedUser: "alice", protocol: "ESMTPA" });
  const mail = { address: "alice@example.org", params: {} };
  const rcpt = (address: string) => ({ address, domain: "example.com" });

  const failing = await sinkOver(temporary).begin(mail, session);
  if ("code" in failing) throw new Error(`MAIL refused: ${failing.code}`);
  assertEquals(await failing.addRecipient(rcpt("a@example.com")), TEMPORARY);

  const tx = await sinkOver(inner).begin(mail, session);
  if ("code" in tx) throw new Error(`MAIL refused: ${tx.code}`);
  const codes: number[] = [];
  for (const to of ["bad1", "bad2", "bad3", "r1", "r2", "r3"]) {
    codes.push((await tx.addRecipient(rcpt(`${to}@example.com`))).code);
  }
  // Three refused and one temporarily refused: still 2 of 2 to go; the third accepted waits.
  assertEquals(codes, [550, 550, 550, 250, 250, RECIPIENT_RATE_REPLY.code]);
  assertEquals(inner.transactions[0]?.recipients.map((r) => r.address), [
    "r1@example.com",
    "r2@example.com",
  ]);
});
