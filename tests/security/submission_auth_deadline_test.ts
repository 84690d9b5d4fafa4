/**
 * The submission port's deadline from connect to a successful AUTH (`submission.auth_timeout`,
 * as `odmr.auth_timeout` on the ODMR port): a stranger that never authenticates is cut with
 * `421 4.7.0` and the connection closed, also in the middle of an AUTH exchange, long before
 * `smtp.timeout` (10s here) would; an authenticated connection outlives the deadline. Real
 * `serve`, real sockets.
 */
import { match as assertMatch, ok as assert } from "node:assert/strict";
import { submissionPort } from "../_helpers/outbound_world.ts";
import { cram, greeted } from "./_raw.ts";
import { CRASHED, withServe } from "./_serve.ts";

const PW = "alice-pw";

Deno.test("submission: no AUTH within submission.auth_timeout → 421 4.7.0 and close", async () => {
  const config = {
    smtp: { timeout: "10s" },
    submission: { listen: ["127.0.0.1:0"], auth_timeout: "1s" },
  };
  await withServe(config, async (server) => {
    const port = submissionPort(server);
    const idle = await greeted(port);
    const midAuth = await greeted(port);
    const authed = await greeted(port);
    try {
      assertMatch((await cram(authed, "alice", PW)).reply, /^235 /);
      assertMatch(await midAuth.command("AUTH CRAM-MD5"), /^334 /);
      // Nothing sent: only the AUTH deadline (not smtp.timeout's 4.4.2 at 10s) ends these.
      assertMatch(await idle.reply(8_000), /^421 4\.7\.0 /);
      assert(await idle.waitClosed(2_000), "closed after the 421");
      assertMatch(await midAuth.reply(8_000), /^421 4\.7\.0 /);
      assert(await midAuth.waitClosed(2_000), "closed after the 421");
      // The authenticated connection outlives the deadline.
      assertMatch(await authed.command("NOOP"), /^250 /);
    } finally {
      idle.close();
      midAuth.close();
      authed.close();
    }
  }, {
    users: [{ name: "alice", domains: ["example.org"], password: PW }],
    forbiddenInLog: new RegExp(` error event=|${CRASHED.source}`, "i"),
  });
});
