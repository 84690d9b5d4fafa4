/**
 * (#10) Holding the ports shut: the ODMR port's deadline from connect to AUTH, the budget of
 * commands without progress on both ports, eviction of unauthenticated ODMR connections for a
 * newcomer, and garbage instead of a TLS ClientHello logged as a peer fault. Real `serve`,
 * real sockets.
 */
import { match as assertMatch, ok as assert } from "node:assert/strict";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { withTestCa } from "../_helpers/certs.ts";
import { toolTest } from "../_helpers/tools.ts";
import { cram, greeted, RawClient } from "./_raw.ts";
import { CRASHED, withServe } from "./_serve.ts";

const PW = { alice: "alice-pw", bob: "bob-pw", carol: "carol-pw" } as const;

const USERS = [
  { name: "alice", domains: ["example.org"], password: PW.alice },
  { name: "bob", domains: ["bob.example"], password: PW.bob },
  { name: "carol", domains: ["carol.example"], password: PW.carol },
];

function withServer(
  config: Record<string, unknown>,
  fn: (server: ServerProcess) => Promise<void>,
): Promise<void> {
  return withServe(config, fn, {
    users: USERS,
    forbiddenInLog: new RegExp(` error event=|${CRASHED.source}`, "i"),
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("(#10) ODMR: no AUTH within odmr.auth_timeout → 421 4.7.0 and close, NOOPs or not", async () => {
  await withServer({ smtp: { timeout: "10s" }, odmr: { auth_timeout: "2s" } }, async (server) => {
    const port = server.odmr[0]!.port;
    const idle = await greeted(port);
    const authed = await greeted(port);
    try {
      const started = Date.now();
      assertMatch((await cram(authed, "alice", PW.alice)).reply, /^235 /);
      // NOOP well inside the idle timeout: only the AUTH deadline can end `idle`.
      const replies: string[] = [];
      while (Date.now() - started < 8_000) {
        replies.push(await idle.command("NOOP"));
        if (replies.at(-1) === "" || replies.at(-1)!.startsWith("421")) break;
        await sleep(400);
      }
      const took = Date.now() - started;
      assertMatch(replies.at(-1) ?? "", /^421 4\.7\.0 /, replies.join(" | "));
      assert(replies.slice(0, -1).every((r) => r.startsWith("250")), replies.join(" | "));
      assert(took >= 1_800 && took < 4_000, `cut at the deadline, not before: ${took} ms`);
      assert(await idle.waitClosed(2_000));
      // The authenticated connection outlives the deadline.
      await sleep(Math.max(0, 2_500 - (Date.now() - started)));
      assertMatch(await authed.command("NOOP"), /^250 /);
    } finally {
      idle.close();
      authed.close();
    }
    assertMatch(server.logs(), /event=odmr_timeout .*code=4\.7\.0/);
  });
});

Deno.test("(#10) commands without progress: the 10th is answered, the 11th gets 421 4.7.0 (both ports)", async (t) => {
  await withServer({ smtp: { timeout: "10s" } }, async (server) => {
    const rows = [
      { port: server.odmr[0]!.port, proto: "odmr", verb: "NOOP" },
      { port: server.odmr[0]!.port, proto: "odmr", verb: "EHLO again.test" },
      { port: server.odmr[0]!.port, proto: "odmr", verb: "RSET" },
      { port: server.smtp[0]!.port, proto: "smtp", verb: "NOOP" },
      { port: server.smtp[0]!.port, proto: "smtp", verb: "RSET" },
      { port: server.smtp[0]!.port, proto: "smtp", verb: "HELP" },
      { port: server.smtp[0]!.port, proto: "smtp", verb: "EHLO again.test" },
    ];
    for (const row of rows) {
      await t.step(`${row.proto}: ${row.verb}`, async () => {
        const c = await greeted(row.port); // the first EHLO is progress, not counted
        try {
          for (let i = 1; i <= 10; i++) {
            assertMatch(await c.command(row.verb), /^2\d\d[ -]/, `command ${i}`);
          }
          assertMatch(await c.command(row.verb), /^421 4\.7\.0 /);
          assert(await c.waitClosed(2_000));
        } finally {
          c.close();
        }
      });
    }
    await t.step("smtp: an accepted message restarts the count", async () => {
      using c = await greeted(server.smtp[0]!.port);
      for (let i = 0; i < 9; i++) assertMatch(await c.command("RSET"), /^250 /);
      assertMatch(await c.command("MAIL FROM:<s@remote.test>"), /^250 /);
      assertMatch(await c.command("RCPT TO:<a@example.org>"), /^250 /);
      assertMatch(await c.command("DATA"), /^354 /);
      assertMatch(await c.command("Subject: x\r\n\r\nbody\r\n."), /^250 /);
      for (let i = 0; i < 10; i++) assertMatch(await c.command("NOOP"), /^250 /);
      assertMatch(await c.command("NOOP"), /^421 4\.7\.0 /);
    });
    await t.step("odmr: a successful AUTH restarts the count", async () => {
      using c = await greeted(server.odmr[0]!.port);
      for (let i = 0; i < 9; i++) assertMatch(await c.command("NOOP"), /^250 /);
      assertMatch((await cram(c, "alice", PW.alice)).reply, /^235 /);
      for (let i = 0; i < 10; i++) assertMatch(await c.command("NOOP"), /^250 /);
      assertMatch(await c.command("NOOP"), /^421 4\.7\.0 /);
    });
  });
});

Deno.test("(#10) ODMR: unauthenticated connections never hold every slot a customer needs", async (t) => {
  const config = { smtp: { timeout: "10s", max_connections: 3, max_connections_per_ip: 2 } };
  await withServer(config, async (server) => {
    const port = server.odmr[0]!.port;
    const open: RawClient[] = [];
    try {
      const c1 = await greeted(port, "127.0.0.31");
      const c2 = await greeted(port, "127.0.0.31");
      const c3 = await greeted(port, "127.0.0.32");
      open.push(c1, c2, c3);
      await t.step(
        "a newcomer from an address at its own limit is refused, not let in",
        async () => {
          const third = await RawClient.connect(port, "127.0.0.31");
          open.push(third);
          assertMatch(await third.reply(), /^421 4\.7\.0 /);
          assertMatch(await c1.command("NOOP"), /^250 /);
        },
      );
      let alice: RawClient;
      await t.step(
        "full of strangers: a newcomer gets in, the oldest of the busiest address goes",
        async () => {
          alice = await greeted(port, "127.0.0.33");
          open.push(alice);
          assertMatch(await c1.reply(), /^421 4\.7\.0 /);
          assert(await c1.waitClosed(2_000));
          assertMatch(await c2.command("NOOP"), /^250 /);
          assertMatch(await c3.command("NOOP"), /^250 /);
          assertMatch((await cram(alice, "alice", PW.alice)).reply, /^235 /);
        },
      );
      await t.step("an authenticated connection is never evicted", async () => {
        const bob = await greeted(port, "127.0.0.34");
        open.push(bob);
        assertMatch(await c2.reply(), /^421 4\.7\.0 /, "the oldest unauthenticated one");
        assertMatch(await alice.command("NOOP"), /^250 /);
        assertMatch((await cram(bob, "bob", PW.bob)).reply, /^235 /);
        assertMatch((await cram(c3, "carol", PW.carol)).reply, /^235 /);
      });
      await t.step("all slots authenticated: the newcomer gets 421 4.7.0", async () => {
        const late = await RawClient.connect(port, "127.0.0.35");
        open.push(late);
        assertMatch(await late.reply(), /^421 4\.7\.0 /);
        assertMatch(await alice.command("NOOP"), /^250 /);
        assertMatch(await c3.command("NOOP"), /^250 /);
      });
    } finally {
      for (const c of open) c.close();
    }
    assertMatch(server.logs(), /event=connection_evicted /);
  });
});

await toolTest(
  "(#10) garbage instead of a TLS ClientHello is logged as a peer fault, never error",
  [
    "openssl",
  ],
  async () => {
    await withTestCa(async (ca) => {
      const implicit = { address: "127.0.0.1:0", tls: "implicit" };
      await withServer({
        tls: { cert: ca.certPath, key: ca.keyPath },
        smtp: { listen: ["127.0.0.1:0", implicit] },
        odmr: { listen: ["127.0.0.1:0", implicit] },
      }, async (server) => {
        const garbage = "GET / HTTP/1.0\r\n\r\n" + "\x00\xff".repeat(64);
        const starttls = await greeted(server.odmr[0]!.port);
        try {
          assertMatch(await starttls.command("STARTTLS"), /^220 /);
          await starttls.write(garbage);
          assert(await starttls.waitClosed(5_000), "closed after the bad handshake");
        } finally {
          starttls.close();
        }
        for (const port of [server.odmr[1]!.port, server.smtp[1]!.port]) {
          using c = await RawClient.connect(port);
          await c.write(garbage);
          assert(await c.waitClosed(5_000), "closed after the bad handshake");
        }
        // Wait for the three info lines (the log is written asynchronously to the pipe).
        const deadline = Date.now() + 5_000;
        while ((server.logs().match(/ info event=tls_failed /g) ?? []).length < 3) {
          assert(Date.now() < deadline, server.logs());
          await sleep(50);
        }
      });
    });
  },
);
