/**
 * An empty command line (or one of spaces only) is a syntax error on every port, answered the
 * same way: `500 5.5.2` as RFC 5321 §4.2.2/§4.2.4 and Postfix's "500 5.5.2 Error: bad syntax".
 * Before, the MX and submission ports said `500 5.5.1 Command unrecognized` and the ODMR port
 * `502 5.5.1 Command not implemented`, which claims a command was there. Real `serve`, raw
 * sockets; the session goes on after it (a mistake, counted in the error budget).
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { greeted } from "./_raw.ts";
import { withServe } from "./_serve.ts";

Deno.test("an empty command line: 500 5.5.2 on the MX, submission and ODMR ports alike", async (t) => {
  await withServe({ submission: { listen: ["127.0.0.1:0"] } }, async (server) => {
    const ports = {
      MX: server.smtp[0]!.port,
      submission: server.listening.find((e) => e.proto === "submission")!.port,
      ODMR: server.odmr[0]!.port,
    };
    for (const [name, port] of Object.entries(ports)) {
      await t.step(name, async () => {
        using c = await greeted(port);
        for (const line of ["", "   "]) {
          assertMatch(
            await c.command(line),
            /^500 5\.5\.2 Syntax error/,
            `line ${JSON.stringify(line)}`,
          );
        }
        assertMatch(await c.command("NOOP"), /^250 /);
        assertEquals((await c.command("QUIT")).slice(0, 3), "221");
      });
    }
  });
});
