/**
 * (session 18) The disk is full while mail waits: the customer's ATRN must still drain it, as
 * that is what frees the space. Before, the claim itself failed (its lease row needs room in the
 * WAL) and the customer got 451 at every ATRN until someone freed space by hand. Now the store
 * keeps a space reserve in data_dir and gives it back for claims and settlements; while it is
 * spent, new mail is refused with 452 4.3.1, and once there is room again mail is taken.
 * Real `serve` on a small tmpfs (root: skipped with the reason otherwise).
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { addUser } from "../_helpers/server_process.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import { fillUp } from "../_helpers/tmpfs.ts";
import { eventsNamed } from "../_helpers/log_lines.ts";
import { RESTORE_RETRY_MAX_MS } from "../../src/queue/space_reserve.ts";
import { aliceAtrn, mailTo, onTmpfs, queuedAddresses } from "./_disk_full.ts";

const NAME = "disk full claim";
const MESSAGES = 20;
/** Polls 250 ms apart, for as long as the longest wait between two tries and 5 s more. */
const POLLS = (RESTORE_RETRY_MAX_MS + 5_000) / 250;

Deno.test("disk full: ATRN still drains the queue, new mail gets 452 4.3.1 until there is room (session 18)", async () => {
  await onTmpfs(NAME, "64m", async ({ dir, start }) => {
    const server = await start();
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    const send = (to: string, lines = 1) =>
      mailTo(server, to, `Subject: ${to}\r\n\r\n${"x".repeat(98)}\r\n`.repeat(lines));
    const all: string[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      all.push(`m${i}@example.org`);
      // Half of them big enough for a body file of their own.
      assertMatch((await send(all[i]!, i % 2 === 0 ? 1 : 2000)).final ?? "", /^250 /);
    }
    fillUp(`${dir}/filler`);
    const drained = await runScriptedCustomer(aliceAtrn(server));
    assertMatch(drained.atrnReply ?? "", /^250 /, server.logs());
    const received = drained.messages.flatMap((m) => m.rcpts);
    assertEquals(all.filter((a) => !received.includes(a)), [], "queued but not drained");
    assertEquals(received.length, MESSAGES, "each message once");
    assertEquals(await queuedAddresses(server.configPath), []);
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
  });
});
