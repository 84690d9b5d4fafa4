/**
 * serve's start drops the leases its node's previous process left (`releaseAllLeases`, after
 * binding its ports, before it serves any connection). When that fails, serve fails like at
 * any other start-up failure: one `startup_failed` line saying why, exit 1, no stack trace, no
 * `ready`. Before, the error escaped serve's handling: exit 1 with an uncaught error and its
 * stack, and no startup_failed line. The database refuses the release here by a trigger (a
 * failure that is not a timing).
 */
import assert from "node:assert/strict";
import { connectPostgres, type Sql } from "../../src/queue/pg/connect.ts";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { type PostgresCluster, postgresTest } from "../_helpers/postgres.ts";
import { type NodeSections, postgresNodeConfig } from "../_helpers/postgres_nodes.ts";
import {
  removeTestFiles,
  runMain,
  type ServerProcess,
  startServer,
  writeTestConfig,
} from "../_helpers/server_process.ts";
import { until } from "../_helpers/wait_until.ts";

/** A failed release: one startup_failed line, exit 1. */
async function releaseFails(pg: PostgresCluster): Promise<void> {
  const url = await pg.createDatabase("start_leases");
  // The schema, then a trigger that refuses every DELETE on domain_leases.
  await (await PgQueueStore.open({ url }, { nodeId: "setup" })).close();
  const sql = await connectPostgres({ url, max: 1 });
  try {
    await sql.unsafe(`CREATE FUNCTION refuse_delete() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN RAISE EXCEPTION 'leases kept by the test'; END $$`);
    await sql.unsafe(`CREATE TRIGGER refuse_delete BEFORE DELETE ON domain_leases
        FOR EACH STATEMENT EXECUTE FUNCTION refuse_delete()`);
  } finally {
    await sql.end({ timeout: 5 });
  }
  const files = await writeTestConfig({ config: postgresNodeConfig("mx-a.test", url) });
  try {
    const r = await runMain(["serve", "--config", files.configPath]);
    const out = r.stdout + r.stderr;
    assert.equal(r.code, 1, out);
    const failures = out.split("\n").filter((l) => l.includes("startup_failed"));
    assert.equal(failures.length, 1, out);
    assert.match(
      failures[0] ?? "",
      /event=startup_failed reason="Cannot release this node's stale leases in PostgreSQL: .*leases kept by the test/,
    );
    assert.doesNotMatch(out, /event=ready|Uncaught|^\s+at /m);
  } finally {
    await removeTestFiles(files);
  }
}

/** Everything `port` sends until it closes the connection (at most 30 s). */
async function readUntilClosed(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), 30_000);
  let text = "";
  try {
    const buf = new Uint8Array(4096);
    for (let n = await conn.read(buf); n !== null; n = await conn.read(buf)) {
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } catch (err) {
    text += `[${err instanceof Error ? err.name : "error"}]`;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed at the 30 s bound
    }
  }
  return text;
}

/**
 * Starts node mx-a.test with a stale lease of its own whose row `holder` keeps locked, and
 * returns once serve's release of it waits for that row (its ports are bound by then).
 */
async function startWhileReleaseWaits(
  sql: Sql,
  holder: Awaited<ReturnType<Sql["reserve"]>>,
  url: string,
  sections: NodeSections = {},
): Promise<ServerProcess> {
  await sql`INSERT INTO domain_leases (domain, owner, lease_until)
      VALUES ('stale.test', 'mx-a.test|7@1', ${Date.now() + 3_600_000})`;
  await holder`BEGIN`;
  await holder`SELECT 1 FROM domain_leases WHERE domain = 'stale.test' FOR UPDATE`;
  const node = await startServer({
    config: postgresNodeConfig("mx-a.test", url, sections),
    until: /event=listening proto=odmr/,
  });
  try {
    await until("serve's release waiting for the row", async () => {
      const [row] = await sql`SELECT count(*)::int AS n FROM pg_stat_activity
          WHERE wait_event_type = 'Lock' AND query LIKE 'DELETE FROM domain_leases%'`;
      return row?.n === 1;
    });
    return node;
  } catch (err) {
    await node.stop();
    await removeTestFiles(node);
    throw err;
  }
}

/**
 * Runs `fn` on node mx-a.test (with `sections`) in a fresh database `db`, started while its
 * release of a stale lease waits for the row the test keeps locked (startWhileReleaseWaits);
 * `unlock()` lets the release go through. Then stops the node and closes the connections.
 */
async function whileReleaseWaits(
  pg: PostgresCluster,
  opts: { readonly db: string; readonly sections?: NodeSections },
  fn: (node: ServerProcess, unlock: () => Promise<void>) => Promise<void>,
): Promise<void> {
  const url = await pg.createDatabase(opts.db);
  await (await PgQueueStore.open({ url }, { nodeId: "setup" })).close();
  const sql = await connectPostgres({ url, max: 2 });
  const holder = await sql.reserve();
  let isHeld = true;
  const unlock = async () => {
    await holder`ROLLBACK`;
    isHeld = false;
  };
  try {
    const node = await startWhileReleaseWaits(sql, holder, url, opts.sections);
    try {
      await fn(node, unlock);
    } finally {
      await node.stop();
      await removeTestFiles(node);
    }
  } finally {
    if (isHeld) await holder`ROLLBACK`.catch(() => {});
    holder.release();
    await sql.end({ timeout: 5 });
  }
}

/**
 * No session is served until the release is done: one that had could take a lease that the
 * release then dropped under its drain. The release waits here for a row the test keeps
 * locked, until serve's statement timeout (9.5 s) fails it; the connections accepted meanwhile
 * get nothing (before: 220, then 421 at the failed start's stop).
 */
function sessionsWait(pg: PostgresCluster): Promise<void> {
  // The row stays locked: the release waits for it up to the statement timeout of serve's
  // calls (9.5 s), then fails and serve exits 1.
  return whileReleaseWaits(pg, { db: "start_leases_held" }, async (node) => {
    // Accepted by the bound ports while the release waits: never served, closed at the end.
    const got = await Promise.all(
      [node.smtp[0]?.port, node.odmr[0]?.port].map((p) => readUntilClosed(p ?? 0)),
    );
    const code = await node.exited();
    const out = node.logs();
    assert.deepEqual(got, ["", ""], out);
    assert.equal(code, 1, out);
    assert.match(
      out,
      /event=startup_failed reason="Cannot release this node's stale leases in PostgreSQL: .*statement timeout/,
    );
    assert.doesNotMatch(out, /event=ready/);
  });
}

/**
 * `/healthz` says 503 while serve cannot queue mail yet (the connections it accepts wait for the
 * release), then 200 once it serves them: a load balancer or supervisor that trusts it sends
 * mail to a node that is ready. Before, it said 200 throughout.
 */
function healthWhileHeld(pg: PostgresCluster): Promise<void> {
  const opts = { db: "start_leases_health", sections: { metrics: { listen: "127.0.0.1:0" } } };
  return whileReleaseWaits(pg, opts, async (node, unlock) => {
    // Bound before the release started (the last listener bound).
    const port = Number(
      /event=listening proto=metrics address=127\.0\.0\.1:(\d+)/
        .exec(node.logs())?.[1],
    );
    assert.deepEqual(await health(port), [503, "starting\n"], node.logs());
    await unlock();
    await until("serve's ready line", () => /event=ready/.test(node.logs()));
    assert.deepEqual(await health(port), [200, "ok\n"], node.logs());
  });
}

/** `GET /healthz` on 127.0.0.1:`port`: status and body. */
async function health(port: number): Promise<[number, string]> {
  const res = await fetch(`http://127.0.0.1:${port}/healthz`, {
    signal: AbortSignal.timeout(5_000),
  });
  return [res.status, await res.text()];
}

/**
 * Connections waiting in the accept queue of the listener on 127.0.0.1:`port` (Linux shows a
 * listening socket's accept backlog as its rx_queue in /proc/net/tcp).
 */
async function acceptQueue(port: number): Promise<number> {
  const local = `0100007F:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  for (const line of (await Deno.readTextFile("/proc/net/tcp")).split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f[1] === local && f[3] === "0A") return parseInt(f[4]?.split(":")[1] ?? "", 16);
  }
  throw new Error(`no listener on 127.0.0.1:${port} in /proc/net/tcp`);
}

/** The first line `conn` reads (at most 20 s; "" when it closes first). */
async function firstLine(conn: Deno.Conn): Promise<string> {
  const timer = setTimeout(() => conn.close(), 20_000);
  let text = "";
  try {
    const buf = new Uint8Array(4096);
    while (!text.includes("\r\n")) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
  } catch (err) {
    text += `[${err instanceof Error ? err.name : "error"}]`;
  } finally {
    clearTimeout(timer);
  }
  return text.split("\r\n")[0] ?? "";
}

/**
 * The connections accepted while the release waits are served once it is done: each reads its
 * greeting, and serve logs `ready`. They wait at most smtp.max_connections (2 here, counted
 * over all ports): one more is closed at once, and its closing shows the two others held.
 */
function heldThenServed(pg: PostgresCluster): Promise<void> {
  const opts = { db: "start_leases_served", sections: { smtp: { max_connections: 2 } } };
  return whileReleaseWaits(pg, opts, async (node, unlock) => {
    const conns: Deno.Conn[] = [];
    try {
      const smtpPort = node.smtp[0]?.port ?? 0;
      const odmrPort = node.odmr[0]?.port ?? 0;
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port: smtpPort }));
      conns.push(await Deno.connect({ hostname: "127.0.0.1", port: odmrPort }));
      // A connect returns once the kernel has the connection, before serve accepts it: wait
      // until both listeners' accept queues are empty, or the third could be taken first.
      await until(
        "serve accepted both",
        async () => await acceptQueue(smtpPort) === 0 && await acceptQueue(odmrPort) === 0,
      );
      // Over the cap: closed unserved, and only once the two before it are held.
      assert.equal(await readUntilClosed(smtpPort), "", node.logs());
      // Well before serve's statement timeout (9.5 s): the release goes through.
      await unlock();
      const [smtpLine, odmrLine] = await Promise.all(conns.map(firstLine));
      const out = node.logs();
      assert.match(smtpLine ?? "", /^220 mx-a\.test /, out);
      assert.equal(odmrLine, "220 mx-a.test ESMTP on-demand mail relay ready", out);
      await until("serve's ready line", () => /event=ready/.test(node.logs()));
      assert.doesNotMatch(node.logs(), /startup_failed/);
    } finally {
      for (const c of conns) {
        try {
          c.close();
        } catch {
          // closed at firstLine's bound
        }
      }
    }
  });
}

await postgresTest("serve's release of its node's stale leases at start (#13)", async (pg, t) => {
  await t.step(
    "a failed release is one startup_failed line and exit 1",
    () => releaseFails(pg),
  );
  await t.step("no session is served before the release", () => sessionsWait(pg));
  await t.step(
    "the connections held meanwhile are served after it, at most max_connections",
    () => heldThenServed(pg),
  );
  await t.step("/healthz says 503 while the release waits, then 200", () => healthWhileHeld(pg));
});
