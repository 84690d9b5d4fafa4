/**
 * RFC 4954 §4 lets AUTH end a pipelined group (RFC 2920): the replies to the commands before
 * it come first, in order, then its `334`. The submission port held the `250` of a pipelined
 * RSET and wrote the `334` challenge ahead of it.
 */
import { equal, ok } from "node:assert/strict";
import { AuthThrottle } from "../../src/auth/throttle.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { SubmissionAuth } from "../../src/submission/auth.ts";
import { withStore } from "../auth/_fixtures.ts";
import { startReady } from "../smtp/_session.ts";

Deno.test("submission: the 250 of a pipelined RSET comes before AUTH's 334", async () => {
  await withStore(async (store) => {
    await store.addUser("alice", "correct horse", ["example.org"]);
    const auth = new SubmissionAuth({
      credentials: store,
      throttle: new AuthThrottle(),
      log: NULL_LOGGER,
      hostname: "mx.test",
      timeoutMs: 2_000,
      remoteAddress: "192.0.2.1",
    });
    const s = await startReady({ options: { auth } });
    try {
      await s.client.send("RSET\r\nAUTH CRAM-MD5\r\n");
      const first = await s.client.reply();
      const second = await s.client.reply();
      ok(first.startsWith("250"), `RSET's reply first, got ${JSON.stringify([first, second])}`);
      ok(second.startsWith("334 "), `then the challenge, got ${JSON.stringify(second)}`);
      equal((await s.client.command("*")).slice(0, 3), "501");
    } finally {
      await s.end();
    }
  });
});
