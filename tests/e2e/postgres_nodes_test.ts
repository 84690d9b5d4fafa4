/**
 * Two `serve` nodes on one PostgreSQL database (#14): mail received by node A is collected
 * through node B, a user added once is seen by both, one domain is drained by one session
 * cluster-wide (the second ATRN gets 451), and after `kill -9` of the draining node the other
 * delivers the rest once the lease has run out. Nothing acknowledged is lost.
 */
import assert from "node:assert/strict";
import { type PostgresCluster, postgresTest } from "../_helpers/postgres.ts";
import {
  atrnExampleOrg,
  postgresNodeConfig,
  waitUntilAccepted,
  withTwoNodes,
} from "../_helpers/postgres_nodes.ts";
import {
  addUser,
  removeTestFiles,
  runMain,
  type ServerProcess,
  startServer,
  writeTestConfig,
} from "../_helpers/server_process.ts";
import { queueIdOf, submit, submitAccepted } from "../_helpers/smtp_submit.ts";
import { until } from "../_helpers/wait_until.ts";

const PASSWORD = "secret-password";
const LEASE = "4s";

function nodeConfig(name: string, url: string): Record<string, unknown> {
  return postgresNodeConfig(name, url, { queue: { lease_time: LEASE } });
}

/** Both nodes, alice (example.org) added through A and known to both. */
function withNodes(
  pg: PostgresCluster,
  db: string,
  fn: (a: ServerProcess, b: ServerProcess) => Promise<void>,
): Promise<void> {
  return withTwoNodes(pg, db, { queue: { lease_time: LEASE } }, async (a, b) => {
    await addUser(a.configPath, "alice", ["example.org"], PASSWORD);
    await waitUntilAccepted(a, "example.org");
    await waitUntilAccepted(b, "example.org");
    await fn(a, b);
  });
}

/** ATRN example.org as alice; `hold` keeps the lease without taking a message. */
const atrn = (node: ServerProcess, timeoutMs?: number) =>
  atrnExampleOrg(
    port(node.odmr),
    "alice",
    PASSWORD,
    timeoutMs === undefined ? undefined : { silentAfterAtrn: true, timeoutMs },
  );

/** Waits until `node` logged its 250 to an ATRN. */
const atrnAnswered = (node: ServerProcess) =>
  until("the 250 to ATRN", () => /event=atrn\b/.test(node.logs()), 10_000);

function port(listeners: readonly { port: number }[]): number {
  const first = listeners[0];
  if (first === undefined) throw new Error("no listener");
  return first.port;
}

async function send(node: ServerProcess, n: number, domain = "example.org"): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await submit({
      port: port(node.smtp),
      from: "sender@example.net",
      to: [`user${i}@${domain}`],
      body: new TextEncoder().encode(`Subject: m${i}\r\n\r\nbody ${i}\r\n`),
    });
    const id = queueIdOf(r.final);
    assert.ok(id, `message ${i} accepted: ${r.final}`);
    ids.push(id);
  }
  return ids;
}

await postgresTest(
  "two serve nodes on one PostgreSQL: mail received by A is collected through B (#14)",
  async (pg) => {
    await withNodes(pg, "nodes_collect", async (a, b) => {
      const sent = await send(a, 5);
      const got = await atrn(b);
      assert.match(got.atrnReply ?? "", /^250 /);
      // The two probes plus the five.
      assert.equal(got.messages.length, 7);
      const subjects = got.messages.map((m) => new TextDecoder().decode(m.data)).join("\n");
      for (let i = 0; i < sent.length; i++) assert.ok(subjects.includes(`Subject: m${i}`));
      const left = await runMain(["queue", "list", "--json", "--config", a.configPath]);
      assert.equal(left.code, 0, left.stderr);
      assert.deepEqual(JSON.parse(left.stdout), [], "delivered mail left the shared queue");
    });
  },
);

await postgresTest(
  "two serve nodes: a second ATRN for a domain being drained gets 451 on the other node (#14)",
  async (pg) => {
    await withNodes(pg, "nodes_busy", async (a, b) => {
      // The first customer takes the lease on A and then says nothing.
      const holding = atrn(a, 4000);
      // Wait until A has answered 250 to it: then B must refuse.
      await atrnAnswered(a);
      const second = await atrn(b);
      assert.match(second.atrnReply ?? "", /^451 4\.3\.0/);
      assert.match((await holding).atrnReply ?? "", /^250 /);
    });
  },
);

await postgresTest(
  "kill -9 of the draining node: the other node delivers the rest after the lease time (#14)",
  async (pg) => {
    await withNodes(pg, "nodes_crash", async (a, b) => {
      await send(b, 6);
      // A drains, the customer takes the first message's body and then A dies.
      const first = atrn(a, 8000);
      await atrnAnswered(a);
      await a.kill9();
      // Before the lease runs out B refuses; afterwards B serves everything that was queued.
      const early = await atrn(b);
      assert.match(early.atrnReply ?? "", /^451 /, "the dead node's lease still holds");
      assert.match((await first).atrnReply ?? "", /^250 /);
      let got: Awaited<ReturnType<typeof atrn>> | undefined;
      for (let i = 0; i < 40; i++) {
        await new Promise((res) => setTimeout(res, 250));
        got = await atrn(b);
        if (!/^451 /.test(got.atrnReply ?? "")) break;
      }
      assert.match(got?.atrnReply ?? "", /^250 /);
      assert.equal(got?.messages.length, 8, "the two probes and all six: nothing lost");
    });
  },
);

await postgresTest(
  "PostgreSQL down: 4xx to senders and customers, /healthz 503; back up: ingest resumes by itself (#14)",
  async (pg) => {
    const url = await pg.createDatabase("nodes_down");
    const node = await startServer({
      config: { ...nodeConfig("mx-a.test", url), metrics: { listen: "127.0.0.1:0" } },
    });
    try {
      await addUser(node.configPath, "alice", ["example.org"], PASSWORD);
      await waitUntilAccepted(node, "example.org");
      const metrics = node.listening.find((l) => l.proto === "metrics");
      assert.ok(metrics, "metrics listener");
      const health = async () => {
        const r = await fetch(`http://127.0.0.1:${metrics.port}/healthz`);
        await r.body?.cancel();
        return r.status;
      };
      assert.equal(await health(), 200);
      await pg.kill();
      const down = await submit({
        port: port(node.smtp),
        from: "sender@example.net",
        to: ["user@example.org"],
        body: new TextEncoder().encode("Subject: while down\r\n\r\nbody\r\n"),
      });
      assert.match(down.final ?? down.replies.at(-1) ?? "", /^4\d\d /, "never a 250 while down");
      assert.equal(await health(), 503);
      assert.match((await atrn(node)).atrnReply ?? "", /^451 /);
      await pg.start();
      await waitUntilAccepted(node, "example.org");
      assert.equal(await health(), 200);
    } finally {
      await node.stop();
      await removeTestFiles(node);
    }
  },
);

await postgresTest(
  "serve exits 1 with one line when PostgreSQL is unreachable at start (#14)",
  async (pg) => {
    const { configPath, dataDir } = await writeTestConfig({
      config: nodeConfig("mx-a.test", `postgres://odmr@127.0.0.1:${pg.port + 1}/none`),
    });
    try {
      const r = await runMain(["serve", "--config", configPath]);
      assert.equal(r.code, 1);
      const lines = (r.stdout + r.stderr).trim().split("\n");
      assert.equal(lines.length, 1, r.stdout + r.stderr);
      assert.match(lines[0] ?? "", /startup_failed.*Cannot connect to PostgreSQL/);
    } finally {
      await removeTestFiles({ configPath, dataDir });
    }
  },
);

await postgresTest(
  "queue migrate moves a SQLite queue and its users to PostgreSQL; serve on it delivers them (#14)",
  async (pg) => {
    // A provider on SQLite with a user and two messages, one with a 200 KB body.
    const old = await startServer({ config: { hostname: "mx-a.test" } });
    const big = `Subject: big\r\n\r\n${`${"0123456789abcdef".repeat(4)}\r\n`.repeat(3200)}`;
    let sqliteConfig = "";
    let dataDir = "";
    try {
      await addUser(old.configPath, "alice", ["example.org"], PASSWORD);
      await send(old, 1);
      await submitAccepted({
        port: port(old.smtp),
        from: "sender@example.net",
        to: ["big@example.org"],
        body: new TextEncoder().encode(big),
      });
      sqliteConfig = old.configPath;
      dataDir = old.dataDir;
    } finally {
      assert.equal(await old.stop(), 0);
    }
    const url = await pg.createDatabase("migrate");
    const { configPath } = await writeTestConfig({
      dataDir,
      config: nodeConfig("mx-a.test", url),
    });
    try {
      const first = await runMain(["queue", "migrate", "--config", configPath]);
      assert.equal(first.code, 0, first.stderr);
      assert.match(first.stdout, /Copied 2 message\(s\) \(0 already copied\) and 1 user\(s\)/);
      const again = await runMain(["queue", "migrate", "--config", configPath]);
      assert.match(again.stdout, /Copied 0 message\(s\) \(2 already copied\) and no users/);
      const sqliteList = await runMain(["queue", "list", "--json", "--config", sqliteConfig]);
      const pgList = await runMain(["queue", "list", "--json", "--config", configPath]);
      assert.deepEqual(JSON.parse(pgList.stdout), JSON.parse(sqliteList.stdout));
      // serve on PostgreSQL knows alice and hands both messages over, bodies intact.
      const node = await startServer({ dataDir, config: nodeConfig("mx-a.test", url) });
      try {
        const got = await atrn(node);
        assert.equal(got.messages.length, 2);
        const bodies = got.messages.map((m) => new TextDecoder().decode(m.data));
        assert.ok(bodies.some((b) => b.endsWith(big)), "the 200 KB body byte-exact");
      } finally {
        await node.stop();
      }
    } finally {
      await removeTestFiles({ dataDir, configPath: sqliteConfig });
      await Deno.remove(configPath).catch(() => {});
    }
  },
);

Deno.test("queue migrate refuses without a PostgreSQL backend in the config (exit 2)", async () => {
  const { configPath, dataDir } = await writeTestConfig({ config: { hostname: "mx-a.test" } });
  try {
    const r = await runMain(["queue", "migrate", "--config", configPath]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /set queue\.backend: postgres/);
  } finally {
    await removeTestFiles({ configPath, dataDir });
  }
});
