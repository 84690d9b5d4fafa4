/**
 * (review wt18-revin) A bare LF inside an AUTH response line ends the session, as one in a
 * command line does (SECURITY.md: framing cannot be trusted any more). Before, the AUTH got
 * `500 5.5.2` and what followed the LF ran as the next command, on the ODMR and the submission
 * port alike: a peer in front that splits lines otherwise saw one line where serve ran two.
 * Real `serve`, raw sockets.
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { greeted } from "./_raw.ts";
import { withServe } from "./_serve.ts";

Deno.test("a bare LF in an AUTH response: 500 5.5.2 and the end, nothing after it runs (ODMR, submission)", async (t) => {
  await withServe(
    { submission: { listen: ["127.0.0.1:0"] } },
    async (server) => {
      const ports = {
        ODMR: server.odmr[0]!.port,
        submission: server.listening.find((e) => e.proto === "submission")!.port,
      };
      for (const [name, port] of Object.entries(ports)) {
        await t.step(name, async () => {
          using c = await greeted(port);
          assertMatch(await c.command("AUTH CRAM-MD5"), /^334 /);
          await c.write("YWxpY2U=\nNOOP\r\n");
          assertMatch(await c.reply(), /^500 5\.5\.2 /);
          // The NOOP behind the LF is not answered: the server closed instead.
          assertEquals(await c.waitClosed(5_000), true, `still open; pending: ${c.pending}`);
          assertEquals(c.pending, "");
        });
      }
    },
    { users: [{ name: "alice", domains: ["example.org"] }] },
  );
});
