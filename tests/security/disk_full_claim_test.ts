/**
 * (session 18) The disk is full while mail waits: the customer's ATRN must still drain it, as
 * that is what frees the space. Before, the claim itself failed (its lease row needs room in the
 * WAL) and the customer got 451 at every ATRN until someone freed space by hand. Now the store
 * keeps a space reserve in data_dir and gives it back for claims and settlements; while it is
 * spent, new mail is refused with 452 4.3.1, and once there is room again mail is taken.
 * Real `serve` on a small tmpfs (root: skipped with the reason otherwise).
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { addUser, queueList, startServer } from "../_helpers/server_process.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { submit } from "../_helpers/smtp_submit.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import { RESTORE_RETRY_MAX_MS } from "../../src/queue/space_reserve.ts";
import { fillUp, mountTmpfs, unmountTmpfs } from "../_helpers/tmpfs.ts";
import { eventsNamed } from "../_helpers/log_lines.ts";

const enc = new TextEncoder();
const NAME = "disk full claim";
/** Polls 250 ms apart, for as long as the longest wait between two tries and 5 s more. */
const POLLS = (RESTORE_RETRY_MAX_MS + 5_000) / 250;
const MESSAGES = 20;
type Listed = { recipients: { address: string }[] }[];

Deno.test("disk full: ATRN still drains the queue, new mail gets 452 4.3.1 until there is room (session 18)", async () => {
  const dir = await mountTmpfs(NAME, "64m");
  if (dir === undefined) return;
  let server: ServerProcess | undefined;
  try {
    server = await startServer({ dataDir: `${dir}/data`, configPath: `${dir}/config.yaml` });
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    const send = (to: string, lines = 1) =>
      submit({
        port: server!.smtp[0]!.port,
        from: "s@sender.test",
        to: [to],
        body: enc.encode(`Subject: ${to}\r\n\r\n${"x".repeat(98)}\r\n`.repeat(lines)),
      });
    const all: string[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      all.push(`m${i}@example.org`);
      // Half of them big enough for a body file of their own.
      assertMatch((await send(all[i]!, i % 2 === 0 ? 1 : 2000)).final ?? "", /^250 /);
    }
    fillUp(`${dir}/filler`);
    const drained = await runScriptedCustomer({
      port: server.odmr[0]!.port,
      auth: { mechanism: "CRAM-MD5", user: "alice", password: "alice-pw" },
      atrn: "example.org",
      timeoutMs: 20_000,
    });
    assertMatch(drained.atrnReply ?? "", /^250 /, server.logs());
    const received = drained.messages.flatMap((m) => m.rcpts);
    assertEquals(all.filter((a) => !received.includes(a)), [], "queued but not drained");
    assertEquals(received.length, MESSAGES, "each message once");
    const left = (await queueList(server.configPath) as Listed).flatMap((m) =>
      m.recipients.map((r) => r.address)
    );
    assertEquals(left, []);
    // The claim gave the reserve back, unless SQLite's files had room for it (then so may they
    // for this message).
    const spent = eventsNamed(server.logs(), "space_reserve_used").length > 0;
    const late = (await send("late@example.org")).final ?? "";
    assertMatch(late, spent ? /^452 4\.3\.1 / : /^(452 4\.3\.1|250) /, server.logs());
    await Deno.remove(`${dir}/filler`);
    // Tries to put the reserve back wait 1 s, doubling after each failed one (up to
    // RESTORE_RETRY_MAX_MS); maintenance tries too.
    let later = "";
    for (let i = 0; i < POLLS && !later.startsWith("250 "); i++) {
      later = (await send("later@example.org")).final ?? "";
      if (!later.startsWith("250 ")) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assertMatch(later, /^250 /, server.logs());
    assertEquals(await server.stop(), 0, server.logs());
  } finally {
    await server?.kill9();
    await unmountTmpfs(dir);
  }
});
