/**
 * (session 18) /healthz while the space reserve is spent: serve refuses new mail with 452 4.3.1
 * from then on, so /healthz must say "disk full" at once, not only after some sender was refused
 * (before, it answered 200 until the first refusal). Once there is room again it answers 200.
 * Real `serve` on a small tmpfs (root: skipped with the reason otherwise).
 */
import { match as assertMatch } from "node:assert/strict";
import { addUser } from "../_helpers/server_process.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import { fillUp } from "../_helpers/tmpfs.ts";
import { healthz } from "../_helpers/healthz.ts";
import { eventsNamed } from "../_helpers/log_lines.ts";
import { RESTORE_RETRY_MAX_MS } from "../../src/queue/space_reserve.ts";
import { aliceAtrn, mailAccepted, onTmpfs } from "./_disk_full.ts";

const NAME = "disk full reserve health";
/** Polls 250 ms apart, for as long as the longest wait between two tries and 5 s more. */
const POLLS = (RESTORE_RETRY_MAX_MS + 5_000) / 250;

Deno.test("disk full: /healthz says so as soon as the space reserve is spent (session 18)", async () => {
  await onTmpfs(NAME, "64m", async ({ dir, start }) => {
    const server = await start({ config: { metrics: { listen: "127.0.0.1:0" } } });
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    const metrics = server.listening.find((l) => l.proto === "metrics")!.port;
    await mailAccepted(server, "bob@example.org", "Subject: x\r\n\r\nbody\r\n");
    assertMatch(await healthz(metrics), /^HTTP\/1\.1 200 OK ok$/);
    fillUp(`${dir}/filler`);
    // Only a drain's writes (a claim, its settlements, a release) spend the reserve; new mail is
    // refused with 452 first. The WAL reuses the blocks it has, so a write needs new ones only
    // past the WAL's largest size: queue 40 KB messages until one is refused (the WAL is then
    // at that size), then drain them all, whose writes go past it.
    const body = `Subject: y\r\n\r\n${"0123456789abcdefghijklmnopqrstuvwxyz.\r\n".repeat(1000)}`;
    for (let i = 0; i < 5 && eventsNamed(server.logs(), "space_reserve_used").length === 0; i++) {
      for (let m = 0; m < 30; m++) {
        if (!await mailAccepted(server, "bob@example.org", body).then(() => true, () => false)) {
          break;
        }
      }
      await runScriptedCustomer(aliceAtrn(server));
    }
    assertMatch(server.logs(), /event=space_reserve_used/);
    assertMatch(await healthz(metrics), /^HTTP\/1\.1 503 .*disk full/);
    await Deno.remove(`${dir}/filler`);
    // Tries to put the reserve back wait 1 s, doubling after each failed one (up to
    // RESTORE_RETRY_MAX_MS).
    let health = "";
    for (let i = 0; i < POLLS && !health.endsWith(" ok"); i++) {
      health = await healthz(metrics);
      if (!health.endsWith(" ok")) await new Promise((resolve) => setTimeout(resolve, 250));
    }
    assertMatch(health, /^HTTP\/1\.1 200 OK ok$/);
    await server.stop();
  });
});
