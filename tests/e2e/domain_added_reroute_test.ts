/**
 * A domain that becomes a customer's while mail for it waits for its MX hosts (route mx:
 * submitted by another customer before the domain was ours) must then be held for its new
 * owner's ATRN: its MX soon names us, and the outbound worker would fail it as a mail loop
 * (5.4.6) and bounce it. Through the real `serve`: alice submits to newco.test while no user
 * owns it (its MX refuses connections: the mail waits, `outbound.retry` 1h), then `user add bob
 * --domain newco.test`; `queue list`, the gauges and bob's ATRN must all show it held for bob.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { allEvents, type LogEvent } from "../_helpers/log_lines.ts";
import {
  loopback,
  outboundServeConfig,
  startMxDns,
  submissionPort,
} from "../_helpers/outbound_world.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import {
  addUser,
  queueList,
  removeTestFiles,
  runMain,
  type ServerProcess,
  startServer,
} from "../_helpers/server_process.ts";
import { requireTools, toolTest } from "../_helpers/tools.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { until } from "../_helpers/wait_until.ts";
import { parseExposition, valueOf } from "../observe/_prom_parse.ts";
import { submitAll } from "./_submission_client.ts";

const PASSWORD = "secret-password";

function events(server: ServerProcess): LogEvent[] {
  return allEvents(server.logs());
}

async function gauges(server: ServerProcess) {
  const port = server.listening.find((l) => l.proto === "metrics")?.port ?? 0;
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
    signal: AbortSignal.timeout(5_000),
  });
  const exp = parseExposition(await res.text());
  const domain = "newco.test";
  return {
    atrn: valueOf(exp, "odmr_relay_queue_messages", { domain }) ?? 0,
    mx: valueOf(exp, "odmr_relay_outbound_queue_messages", { domain }) ?? 0,
  };
}

/**
 * The test on one backend: `queue` is the config's queue section (none: SQLite). PostgreSQL
 * nodes see a `user add` when their copy of the users reloads: what depends on it is awaited.
 */
async function heldAfterUserAdd(t: Deno.TestContext, queue?: Record<string, unknown>) {
  // Nothing listens there: every attempt is refused, and the mail waits an hour for the next.
  await using dns = await startMxDns({ "newco.test": loopback(121) });
  const server = await startServer({
    config: outboundServeConfig(dns, {
      outbound: { retry: ["1h"] },
      metrics: { listen: "127.0.0.1:0" },
      ...(queue === undefined ? {} : { queue }),
    }),
  });
  const collect = (user: string, domains: string) =>
    runScriptedCustomer({
      port: server.odmr[0]?.port ?? 0,
      auth: { mechanism: "CRAM-MD5", user, password: PASSWORD },
      atrn: domains,
    });
  try {
    await addUser(server.configPath, "alice", ["example.org"], PASSWORD);
    const login = { user: "alice", password: PASSWORD, from: "alice@example.org" };
    await until("alice is known", async () => {
      try {
        await submitAll(submissionPort(server), login, [{
          to: "ceo@newco.test",
          subject: "hello",
        }]);
        return true;
      } catch {
        return false;
      }
    });
    await until(
      "the first attempt deferred",
      () => events(server).some((e) => e.event === "deferred" && e.to === "ceo@newco.test"),
    );

    await t.step("before: waiting for the MX", async () => {
      const [m] = await queueList(server.configPath) as { recipients: { route: string }[] }[];
      assertEquals(m?.recipients.map((r) => r.route), ["mx"]);
      assertEquals(await gauges(server), { atrn: 0, mx: 1 });
    });

    await addUser(server.configPath, "bob", ["newco.test"], PASSWORD);

    await t.step("after `user add`: held for bob's ATRN, in the list and the gauges", async () => {
      const [m] = await queueList(server.configPath) as Record<string, unknown>[];
      const recipients = m?.recipients as Record<string, unknown>[];
      assertEquals(recipients.map((r) => [r.address, r.route, r.status]), [
        ["ceo@newco.test", "atrn", "queued"],
      ]);
      assert(!("next_attempt" in (recipients[0] ?? {})), JSON.stringify(recipients));
      let last = { atrn: -1, mx: -1 };
      await until("the gauges", async () => {
        last = await gauges(server);
        return last.atrn === 1;
      }).catch(() => {});
      assertEquals(last, { atrn: 1, mx: 0 });
    });

    await t.step("alice cannot collect it; bob's ATRN does, and nothing bounced", async () => {
      match(String((await collect("alice", "newco.test")).atrnReply), /^450 /);
      let bob = await collect("bob", "");
      for (let i = 0; i < 100 && !String(bob.authReply).startsWith("235"); i++) {
        await new Promise((r) => setTimeout(r, 100));
        bob = await collect("bob", "");
      }
      match(String(bob.atrnReply), /^250 /, bob.transcript.join("\n"));
      assertEquals(bob.messages.map((m) => [m.mailFrom, m.rcpts]), [
        ["alice@example.org", ["ceo@newco.test"]],
      ]);
      match(new TextDecoder().decode(bob.messages[0]?.data), /\r\nSubject: hello\r\n/);
      assertEquals(await queueList(server.configPath), []);
      assertEquals(await gauges(server), { atrn: 0, mx: 0 });
      const seen = events(server).map((e) => e.event);
      assert(!seen.includes("failed") && !seen.includes("dsn_queued"), seen.join(" "));
    });
  } finally {
    assertEquals(await server.stop(), 0);
    await removeTestFiles(server);
  }
}

await toolTest(
  "a domain given to a user while its mail waits for its MX is held for its ATRN",
  ["dnsmasq"],
  (t) => heldAfterUserAdd(t),
);

await postgresTest(
  "a domain given to a user while its mail waits for its MX is held for its ATRN (PostgreSQL)",
  async (pg, t) => {
    await requireTools("dnsmasq");
    const url = await pg.createDatabase("held_after_user_add");
    await heldAfterUserAdd(t, { backend: "postgres", postgres: { url } });
  },
);

/**
 * Mail that failed as a loop before its domain was ours, requeued once the domain has an owner:
 * back on route mx, due at once, and its MX names us (by our host name). The outbound worker
 * must hold it for the owner's ATRN when it takes the destination, not fail it as a loop again
 * (a second failure report): the same goes for whatever reaches route mx for an owned domain
 * (a node whose copy of the users is late, mail left there by an older version).
 */
await toolTest("the outbound worker holds an owned domain's mail for ATRN (requeued loop)", [
  "dnsmasq",
], async () => {
  await using dns = await startMxDns({ "wake.test": loopback(122) }, {
    mx: [{ name: "loop.test", host: "mx.test", preference: 10 }],
    hosts: [{ name: "mx.test", addresses: ["127.0.0.1"] }],
  });
  const server = await startServer({
    config: outboundServeConfig(dns, { outbound: { retry: ["1h"] } }),
  });
  try {
    await addUser(server.configPath, "alice", ["example.org"], PASSWORD);
    const login = { user: "alice", password: PASSWORD, from: "alice@example.org" };
    const port = submissionPort(server);
    await submitAll(port, login, [{ to: "ceo@loop.test", subject: "looped" }]);
    const failedFor = () =>
      events(server).filter((e) => e.event === "failed" && e.to === "ceo@loop.test");
    await until("the loop failure", () => failedFor().length === 1);
    match(String(failedFor()[0]?.reply), /^554 5\.4\.6 /);
    await addUser(server.configPath, "bob", ["loop.test"], PASSWORD);
    const requeued = await runMain([
      "queue",
      "requeue",
      "--domain",
      "loop.test",
      "--config",
      server.configPath,
    ]);
    assertEquals(requeued.code, 0, requeued.stderr);
    // Mail for the world wakes the worker, which then takes every due destination.
    await submitAll(port, login, [{ to: "x@wake.test", subject: "wake" }]);
    await until(
      "the worker took loop.test",
      () =>
        failedFor().length > 1 ||
        events(server).some((e) => e.event === "outbound_held" && e.domain === "loop.test"),
    );
    assertEquals(failedFor().length, 1);
    const held = events(server).find((e) => e.event === "outbound_held");
    assertEquals([held?.domain, String(held?.recipients)], ["loop.test", "1"]);
    const listed = await queueList(server.configPath, "loop.test") as {
      recipients: { route: string; status: string }[];
    }[];
    assertEquals(listed.flatMap((m) => m.recipients.map((r) => [r.route, r.status])), [[
      "atrn",
      "queued",
    ]]);
    const bob = await runScriptedCustomer({
      port: server.odmr[0]?.port ?? 0,
      auth: { mechanism: "CRAM-MD5", user: "bob", password: PASSWORD },
      atrn: "loop.test",
    });
    assertEquals(bob.messages.map((m) => m.rcpts), [["ceo@loop.test"]]);
  } finally {
    assertEquals(await server.stop(), 0);
    await removeTestFiles(server);
  }
});
