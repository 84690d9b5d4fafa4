/**
 * E2E: the real `serve`'s submission port and swaks as the submitting MTA. What the port makes
 * of the header From field: a message with two From fields is refused at the end of data
 * (`554 5.6.0`, RFC 5322 §3.6), and nothing of it is queued; one From passes. `MAIL FROM:<>`
 * mail must be From the user's own domains (`550 5.7.1`), so that no user can send `<>` mail as
 * the operator (SPF for `<>` is our HELO name's) or as another user; the user's bounces pass.
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { addUser, queueList, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { toolTest } from "../_helpers/tools.ts";
import { submissionPort } from "../_helpers/outbound_world.ts";
import { swaks } from "../e2e/_swaks.ts";

const PASSWORD = "secret-password";

/** swaks as alice over CRAM-MD5 (no TLS needed): envelope `from`, the raw message `data`. */
function submit(port: number, from: string, data: string) {
  return swaks(port, [
    ...["--auth", "CRAM-MD5", "--auth-user", "alice", "--auth-password", PASSWORD],
    ...["--from", from, "--to", "bob@example.com", "--data", data],
  ]);
}

/** How many messages wait for bob's domain. */
async function queuedForBob(configPath: string): Promise<number> {
  return (await queueList(configPath, "example.com") as unknown[]).length;
}

await toolTest("submission: the header From field of submitted mail", [
  "swaks",
], async (t) => {
  const server = await startServer({ config: { submission: { listen: ["127.0.0.1:0"] } } });
  try {
    await addUser(server.configPath, "alice", ["example.org"], PASSWORD);
    await addUser(server.configPath, "bob", ["example.com"], PASSWORD);
    const port = submissionPort(server);

    await t.step("two From fields: 554 5.6.0 at the end of data, nothing queued", async () => {
      const r = await submit(
        port,
        "alice@example.org",
        "From: alice@example.org\r\nFrom: ceo@bank.example\r\nSubject: pay\r\n\r\nhi\r\n",
      );
      match(r.out, /^<\*\* +554 5\.6\.0 /m, r.out);
      assertEquals(await queuedForBob(server.configPath), 0);
    });
    await t.step("one From field in the user's domain: queued", async () => {
      const r = await submit(
        port,
        "alice@example.org",
        "From: alice@example.org\r\nSubject: hi\r\n\r\nhi\r\n",
      );
      assertEquals(r.code, 0, r.out);
      assertEquals(await queuedForBob(server.configPath), 1);
    });
    await t.step("<> From the operator's host name: 550 5.7.1, nothing more queued", async () => {
      const r = await submit(
        port,
        "<>",
        "From: Security <security@mx.test>\r\nSubject: reset\r\n\r\nhi\r\n",
      );
      match(r.out, /^ -> MAIL FROM:<>/m, r.out);
      match(r.out, /^<\*\* +550 5\.7\.1 /m, r.out);
      assertEquals(await queuedForBob(server.configPath), 1);
    });
    await t.step("<> From the user's own domain (its MTA's bounce): queued", async () => {
      const r = await submit(
        port,
        "<>",
        "From: MAILER-DAEMON@example.org\r\nSubject: Undelivered\r\n\r\nhi\r\n",
      );
      assertEquals(r.code, 0, r.out);
      assertEquals(await queuedForBob(server.configPath), 2);
    });
  } finally {
    await server.stop();
    await removeTestFiles(server);
  }
});
