/**
 * The submission port's hourly message allowance counts the messages the queue began, not the
 * MAILs it refused: a queue out of space (`452 4.3.1`) took a message token at every MAIL, so
 * a user's MTA retrying through a full disk spent its hour's allowance, and once space was
 * back its mail got `450 4.7.1` for up to an hour.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { SubmissionRate } from "../../src/submission/rate.ts";
import { SubmissionSink } from "../../src/submission/sink.ts";
import { REPLIES } from "../../src/wire/replies.ts";
import { FakeSink } from "../_helpers/fake_sink.ts";
import { recordingLogger } from "../_helpers/recording_logger.ts";
import { sessionInfo } from "../_helpers/session_info.ts";

Deno.test("submission: MAILs the queue refuses take nothing from the hourly message allowance", async () => {
  const inner = new FakeSink({ rejectMail: REPLIES.storageFull });
  const sink = new SubmissionSink({
    inner,
    domainsOf: () => ["example.org"],
    hasUser: () => true,
    rate: new SubmissionRate({ messagesPerHour: 2, recipientsPerHour: 100 }),
    log: recordingLogger([]),
  });
  const session = sessionInfo({ authenticatedUser: "alice", protocol: "ESMTPA" });
  const mail = { address: "alice@example.org", params: {} };
  const code = async () => {
    const r = await sink.begin(mail, session);
    return "code" in r ? r.code : 250;
  };
  // Five tries while the disk is full: each the queue's own refusal.
  const full: number[] = [];
  for (let i = 0; i < 5; i++) full.push(await code());
  assertEquals(full, [452, 452, 452, 452, 452]);
  // Space is back: the hour's two messages are still there, the third waits.
  delete inner.options.rejectMail;
  assertEquals([await code(), await code(), await code()], [250, 250, 450]);
});
