/**
 * (review wt17-rev1) /healthz on a full disk: while the queue refuses messages for lack of space
 * (`452 4.3.1`) serve cannot take mail, and /healthz says so (503, "disk full"), as it does after
 * a failed sync; once a message is stored again it answers 200. Before, it answered 200 the whole
 * time. Real `serve` on a small tmpfs (root: skipped with the reason otherwise).
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { addUser } from "../_helpers/server_process.ts";
import { fillUp } from "../_helpers/tmpfs.ts";
import { healthz } from "../_helpers/healthz.ts";
import { mailTo, onTmpfs } from "./_disk_full.ts";

const NAME = "disk full health";

Deno.test("disk full: /healthz answers 503 while messages get 452 4.3.1, 200 once one is stored (wt17-rev1)", async () => {
  await onTmpfs(NAME, "16m", async ({ dir, start }) => {
    const server = await start({
      // The default reserve and its margin (16 MB) would not fit: all mail would get 452.
      config: { metrics: { listen: "127.0.0.1:0" }, queue: { space_reserve: "1MB" } },
    });
    await addUser(server.configPath, "alice", ["example.org"]);
    const metrics = server.listening.find((l) => l.proto === "metrics")!.port;
    const send = (n: number, lines: number) =>
      mailTo(server, "bob@example.org", `Subject: ${n}\r\n\r\n${"x".repeat(98)}\r\n`.repeat(lines));
    assertMatch((await send(0, 1)).final ?? "", /^250 /);
    assertMatch(await healthz(metrics), /^HTTP\/1\.1 200 OK ok$/);
    fillUp(`${dir}/filler`);
    assertMatch((await send(1, 2000)).final ?? "", /^452 4\.3\.1 /);
    assertMatch(await healthz(metrics), /^HTTP\/1\.1 503 .*disk full/);
    await Deno.remove(`${dir}/filler`);
    assertMatch((await send(2, 2000)).final ?? "", /^250 /);
    assertMatch(await healthz(metrics), /^HTTP\/1\.1 200 OK ok$/);
    assertEquals(await server.stop(), 0, server.logs());
  });
});
