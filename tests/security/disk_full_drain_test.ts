/**
 * (review wt17-rev1) The disk fills up during an ATRN drain, then space returns: the customer's
 * next ATRN is served at once and gets what was not recorded as delivered; nothing acknowledged
 * is lost. The drained session could not release its lease (the DELETE needs room in the WAL
 * too), so the domain stayed "busy" (451 4.3.0) for `queue.lease_time` (5 minutes by default)
 * after space returned. Real `serve` on a small tmpfs (root: skipped with the reason otherwise).
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { addUser } from "../_helpers/server_process.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import { fillUp } from "../_helpers/tmpfs.ts";
import { aliceAtrn, mailTo, onTmpfs, queuedAddresses } from "./_disk_full.ts";

const NAME = "disk full drain";
const MESSAGES = 8;

Deno.test("disk full during a drain: once space returns the next ATRN is served at once, nothing lost (wt17-rev1)", async () => {
  await onTmpfs(NAME, "16m", async ({ dir, start }) => {
    const server = await start({
      // The default reserve and its margin (16 MB) would not fit: all mail would get 452.
      config: { queue: { space_reserve: "1MB" } },
    });
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    const all: string[] = [];
    for (let i = 0; i < MESSAGES; i++) {
      const to = `m${i}@example.org`;
      const s = await mailTo(server, to, `Subject: ${i}\r\n\r\nbody\r\n`);
      assertMatch(s.final ?? "", /^250 /);
      all.push(to);
    }
    const customer = aliceAtrn(server);
    const received: string[] = [];
    // The disk fills up while the customer takes the first message: nothing more is recorded.
    const first = await runScriptedCustomer({
      ...customer,
      dataReply: (index) => {
        if (index === 0) fillUp(`${dir}/filler`);
        return "250 2.0.0 OK";
      },
    });
    assertMatch(first.atrnReply ?? "", /^250 /);
    for (const m of first.messages) received.push(...m.rcpts);
    // Space returns.
    await Deno.remove(`${dir}/filler`);
    const next = await runScriptedCustomer(customer);
    // 453: the first drain got everything (its failed settlement was written again with the
    // space reserve's room, session 18); never 451, the domain held by the finished drain.
    assertMatch(
      next.atrnReply ?? "",
      /^(250|453) /,
      "the domain is not held by the finished drain",
    );
    for (const m of next.messages) received.push(...m.rcpts);
    assertEquals(await queuedAddresses(server.configPath), []);
    assertEquals(all.filter((a) => !received.includes(a)), [], "acknowledged but never delivered");
    assertEquals(await server.stop(), 0, server.logs());
  });
});
