/**
 * A user removed while its submission session is open sends nothing more on it: no MAIL is
 * taken, the null reverse-path included. Each MAIL reads the user's domains again (a domain
 * taken away is refused at once), but `<>` was allowed for anyone authenticated, so a session
 * authenticated before `user remove` (a leaked password, the account closed) went on relaying
 * to any address with `MAIL FROM:<>` for as long as it stayed open.
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import {
  addUser,
  queueList,
  removeTestFiles,
  runMain,
  startServer,
} from "../_helpers/server_process.ts";
import { submissionPort } from "../_helpers/outbound_world.ts";
import { cramSession } from "../e2e/_submission_client.ts";

const PASSWORD = "secret-password";

Deno.test("submission: a user removed while its session is open sends nothing more on it, <> included", async () => {
  const server = await startServer({ config: { submission: { listen: ["127.0.0.1:0"] } } });
  try {
    await addUser(server.configPath, "alice", ["example.org"], PASSWORD);
    await addUser(server.configPath, "bob", ["example.com"], PASSWORD);
    const port = submissionPort(server);
    using alice = await cramSession(port, "alice", PASSWORD);
    using bob = await cramSession(port, "bob", PASSWORD);
    // Control: before the removal both kinds of sender are taken.
    match(await alice.command("MAIL FROM:<>"), /^250 /);
    match(await alice.command("RSET"), /^250 /);

    const removed = await runMain(["user", "remove", "alice", "--config", server.configPath]);
    assertEquals(removed.code, 0, removed.stderr);

    for (const from of ["", "alice@example.org"]) {
      const r = await alice.command(`MAIL FROM:<${from}>`);
      match(r, /^5\d\d 5\.7\.\d /, `MAIL FROM:<${from}> after user remove: ${r}`);
      if (r.startsWith("250")) {
        await alice.command("RCPT TO:<someone@foreign.example>");
        await alice.command("RSET");
      }
    }
    // Another user's session is not affected.
    match(await bob.command("MAIL FROM:<>"), /^250 /);
    match(await bob.command("RSET"), /^250 /);
    assertEquals(await queueList(server.configPath), []);
  } finally {
    await server.stop();
    await removeTestFiles(server);
  }
});
