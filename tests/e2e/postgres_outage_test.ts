/**
 * Two `serve` nodes on one PostgreSQL database with real peers (#14): the real fetchmail
 * collects through node B the mail that arrived on node A; and PostgreSQL goes away while
 * senders keep submitting to both nodes — first stopped (`pg_ctl stop -m fast`) and kept down a
 * moment, then a plain `pg_ctl restart -m fast` — and no acknowledged message is lost (every
 * 250 had its commit), sessions get 4xx while it is down, `/healthz` says 503 on both nodes,
 * and both take mail again without being restarted.
 */
import assert from "node:assert/strict";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { runFetchmail } from "../_helpers/fetchmail.ts";
import { type PostgresCluster, postgresTest } from "../_helpers/postgres.ts";
import { atrnExampleOrg, waitUntilAccepted, withTwoNodes } from "../_helpers/postgres_nodes.ts";
import { addUser, type ServerProcess } from "../_helpers/server_process.ts";
import { queueIdOf, submit } from "../_helpers/smtp_submit.ts";
import { hasTool, isCi } from "../_helpers/tools.ts";

const PASSWORD = "secret-password";
const enc = new TextEncoder();
const dec = new TextDecoder();

/** Both nodes with metrics, alice (example.org) added through A and known to both. */
function withNodes(
  pg: PostgresCluster,
  db: string,
  fn: (a: ServerProcess, b: ServerProcess) => Promise<void>,
): Promise<void> {
  const sections = { queue: { lease_time: "4s" }, metrics: { listen: "127.0.0.1:0" } };
  return withTwoNodes(pg, db, sections, async (a, b) => {
    await addUser(a.configPath, "alice", ["example.org"], PASSWORD);
    await waitUntilAccepted(a, "example.org");
    await waitUntilAccepted(b, "example.org");
    await fn(a, b);
  });
}

function smtpPort(node: ServerProcess): number {
  return node.smtp[0]?.port ?? 0;
}

/** Submits one message to `node`; its queue id when it was acknowledged with 250. */
async function send(
  node: ServerProcess,
  subject: string,
): Promise<{ id?: string; last: string }> {
  const r = await submit({
    port: smtpPort(node),
    from: "sender@example.net",
    to: ["user@example.org"],
    body: enc.encode(`Subject: ${subject}\r\n\r\nbody of ${subject}\r\n`),
    // Bounded, so a session the node never answers fails the test instead of hanging the suite.
    timeoutMs: 30_000,
  });
  const last = r.final ?? r.replies.at(-1) ?? "";
  const id = queueIdOf(r.final);
  return id === undefined ? { last } : { id, last };
}

async function health(node: ServerProcess): Promise<number> {
  const metrics = node.listening.find((l) => l.proto === "metrics");
  assert.ok(metrics, "metrics listener");
  const r = await fetch(`http://127.0.0.1:${metrics.port}/healthz`).catch((err) => {
    throw new Error(`/healthz unreachable (${err}): the node died?\n${node.logs().slice(-4000)}`);
  });
  await r.body?.cancel();
  return r.status;
}

/** Polls `/healthz` until it answers `status` (bounded); returns whether it did. */
async function healthBecomes(node: ServerProcess, status: number): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    if ((await health(node)) === status) return true;
    await new Promise((res) => setTimeout(res, 50));
  }
  return false;
}

await postgresTest(
  "fetchmail collects through node B the mail that arrived on node A (#14)",
  async (pg) => {
    if (!(await hasTool("fetchmail"))) {
      if (isCi()) throw new Error("fetchmail not installed, and CI=true forbids skipping");
      // deno-lint-ignore no-console -- the printed reason is the point of a skip
      console.log("skip: fetchmail through node B: fetchmail not installed");
      return;
    }
    await withNodes(pg, "outage_fetchmail", async (a, b) => {
      const sent: string[] = [];
      for (let i = 0; i < 4; i++) {
        const r = await send(a, `via-a-${i}`);
        assert.ok(r.id, r.last);
        sent.push(`via-a-${i}`);
      }
      const capture = await startCaptureServer();
      try {
        const run = await runFetchmail({
          port: b.odmr[0]?.port ?? 0,
          smtpPort: capture.port,
          user: "alice",
          password: PASSWORD,
          domains: ["example.org"],
        });
        assert.equal(run.code, 0, run.output);
        // The probes of both nodes and the four, each once.
        await capture.waitForMessages(6);
        const subjects = capture.messages.map((m) =>
          /^Subject: (.*)$/m.exec(dec.decode(m.body))?.[1]
        );
        for (const s of sent) {
          assert.equal(subjects.filter((x) => x === s).length, 1, `${s} once: ${subjects}`);
        }
        assert.equal(capture.messages.length, 6, subjects.join(", "));
        // They arrived on node A (its Received: line), and went out through node B's port.
        for (const m of capture.messages) {
          const text = dec.decode(m.body);
          if (text.includes("Subject: via-a-")) {
            assert.match(text, /^Received: [^]*?\bby mx-a\.test\b/);
          }
        }
      } finally {
        await capture.close();
      }
    });
  },
);

await postgresTest(
  "PostgreSQL restarted while mail flows: 4xx while down, no acknowledged message lost, /healthz 503, both nodes recover by themselves (#14)",
  async (pg) => {
    await withNodes(pg, "outage_restart", async (a, b) => {
      /** Subjects of the messages a node answered 250 to, with the queue id it gave. */
      const acknowledged = new Map<string, string>();
      const outcomes: { node: string; last: string; at: number }[] = [];
      let isRunning = true;
      let seq = 0;
      const sender = async (node: ServerProcess, name: string) => {
        while (isRunning) {
          const subject = `${name}-${seq++}`;
          const r = await send(node, subject).catch((err: Error) => ({
            id: undefined,
            last: `no reply: ${err.message}`,
          }));
          outcomes.push({ node: name, last: r.last, at: Date.now() });
          if (r.id !== undefined) acknowledged.set(subject, r.id);
          else await new Promise((res) => setTimeout(res, 20)); // a sender's pause after 4xx
        }
      };
      const senders = [sender(a, "a1"), sender(a, "a2"), sender(b, "b1"), sender(b, "b2")];
      /**
       * Waits (bounded: 60 s) until each of the four senders got a 250 after `since`; false if
       * not. 20 s was once not enough in a fresh-clone CI run (the whole test took 11-34 s in
       * five runs alone); the failure message shows the last outcomes and both nodes' logs.
       */
      const everySenderAcceptedSince = async (since: number): Promise<boolean> => {
        for (let i = 0; i < 1200; i++) {
          const fresh = outcomes.filter((o) => o.at > since && /^250 /.test(o.last));
          if (new Set(fresh.map((o) => o.node)).size === 4) return true;
          await new Promise((res) => setTimeout(res, 50));
        }
        return false;
      };
      try {
        // Mail flows, then the database goes away (an operator's restart) for a moment.
        for (let i = 0; i < 1500 && acknowledged.size < 20; i++) {
          await new Promise((res) => setTimeout(res, 20));
        }
        assert.ok(
          acknowledged.size >= 20,
          `mail flows before the outage (${acknowledged.size} acknowledged in 30 s)\n${
            a.logs().slice(-2000)
          }\n${b.logs().slice(-2000)}`,
        );
        const downAt = Date.now();
        await pg.kill("fast");
        assert.ok(await healthBecomes(a, 503), "node A's /healthz reports the outage");
        assert.ok(await healthBecomes(b, 503), "node B's /healthz reports the outage");
        for (let i = 0; i < 100 && !outcomes.some((o) => o.at > downAt && /^4/.test(o.last)); i++) {
          await new Promise((res) => setTimeout(res, 50));
        }
        const atrn = await atrnExampleOrg(b.odmr[0]?.port ?? 0, "alice", PASSWORD);
        assert.match(atrn.atrnReply ?? "", /^451 /, "ATRN while the database is down");
        await pg.start();
        const upAt = Date.now();
        // Both nodes take mail again without being restarted.
        assert.ok(await healthBecomes(a, 200), "node A healthy again");
        assert.ok(await healthBecomes(b, 200), "node B healthy again");
        assert.ok(
          await everySenderAcceptedSince(upAt),
          "every sender's mail was accepted again after the outage, on both nodes",
        );
        // Then a plain `pg_ctl restart -m fast` in the middle of the flow: group commits in
        // flight lose their connection; whatever was answered 250 must still be there.
        const ackedBefore = acknowledged.size;
        await pg.restart();
        const restartedAt = Date.now();
        assert.ok(
          await everySenderAcceptedSince(restartedAt),
          `every sender's mail was accepted again after the restart, on both nodes\n${
            JSON.stringify(outcomes.filter((o) => o.at > restartedAt).slice(-12))
          }\n${a.logs().slice(-2500)}\n${b.logs().slice(-2500)}`,
        );
        assert.ok(acknowledged.size > ackedBefore, "mail accepted again after the restart");
      } finally {
        isRunning = false;
        await Promise.all(senders);
      }
      const temporary = outcomes.filter((o) => /^4\d\d /.test(o.last));
      const other = outcomes.filter((o) => !/^(250|4\d\d) /.test(o.last));
      assert.deepEqual(
        other,
        [],
        `every reply was 250 or 4xx: never 5xx, never a silent close\n${a.logs().slice(-3000)}\n${
          b.logs().slice(-3000)
        }`,
      );
      assert.ok(temporary.length > 0, "senders got 4xx while the database was down");
      // Every 250 had its commit: each acknowledged message is in the queue, all of them.
      const delivered = new Set<string | undefined>();
      const drain = async () => {
        const got = await atrnExampleOrg(a.odmr[0]?.port ?? 0, "alice", PASSWORD);
        assert.match(got.atrnReply ?? "", /^250 /);
        for (const m of got.messages) {
          delivered.add(/^Subject: (.*)$/m.exec(dec.decode(m.data))?.[1]);
        }
      };
      const missing = () => [...acknowledged].filter(([subject]) => !delivered.has(subject));
      /** Both nodes' log lines naming the missing messages' queue ids. */
      const trail = () =>
        missing().flatMap(([, id]) =>
          `${a.logs()}\n${b.logs()}`.split("\n").filter((line) => line.includes(id))
        ).join("\n");
      await drain();
      if (missing().length > 0) {
        // A message the first drain did not send is not lost if it is still queued: a second
        // ATRN must deliver it. Say so, with its trail, so that a late delivery is seen too.
        // deno-lint-ignore no-console -- a finding worth reading even when the test passes
        console.log(`first drain missed ${JSON.stringify(missing())}:\n${trail()}`);
        await drain();
      }
      assert.deepEqual(
        missing(),
        [],
        `acknowledged but lost (of ${acknowledged.size}), not sent by two drains\n${trail()}`,
      );
    });
  },
);
