/**
 * A domain taken from its owner or moved to another user while mail for it waits for ATRN,
 * through the real `serve` and the `user` command beside it. What an operator relies on:
 * nothing acknowledged is lost, and nobody but the domain's owner of the moment collects it.
 * - moved from carol to bob: carol's ATRN of it is refused (named or bare), bob's gets it;
 * - carol's drain running while it moves: the drain takes no further message of it;
 * - taken from dave with no new owner: it stays held for ATRN (never sent to its MX, which
 *   names us), shown in `queue list` and summed in the gauges as domain="other", until expiry.
 * On SQLite and on a PostgreSQL node (which sees a user change once its copy of the users
 * reloaded: each change is awaited through the gauges, seenByServe).
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { allEvents, type LogEvent } from "../_helpers/log_lines.ts";
import { type CustomerScript, runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import {
  addUser,
  queueList,
  removeTestFiles,
  runMain,
  type ServerProcess,
  startServer,
} from "../_helpers/server_process.ts";
import { parseExposition, valueOf } from "../observe/_prom_parse.ts";
import { SmtpSession } from "./_smtp_session.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { until } from "../_helpers/wait_until.ts";

const PASSWORD = "secret-password";

function events(server: ServerProcess): LogEvent[] {
  return allEvents(server.logs());
}

/** Mail to `to` through the MX port; must be accepted. */
async function receive(server: ServerProcess, to: string, subject: string): Promise<void> {
  const { session } = await SmtpSession.open(server.smtp[0]?.port ?? 0);
  using _ = session;
  match(await session.command("EHLO sender.test"), /^250 /);
  match(
    await session.sendMessage("someone@sender.test", to, `Subject: ${subject}\r\n\r\nhi\r\n`),
    /^250 /,
  );
}

/** `odmr_relay_queue_messages{domain}` as serve shows it now (undefined: no such series). */
async function waitingGauge(server: ServerProcess, domain: string): Promise<number | undefined> {
  const port = server.listening.find((l) => l.proto === "metrics")?.port ?? 0;
  const res = await fetch(`http://127.0.0.1:${port}/metrics`, {
    signal: AbortSignal.timeout(5_000),
  });
  return valueOf(parseExposition(await res.text()), "odmr_relay_queue_messages", { domain });
}

let probes = 0;

/**
 * Waits until serve sees every user change made so far: a PostgreSQL node reloads its copy of
 * the users after a change (README "Scaling out"). A probe domain given to the user `probe`
 * after them shows in the gauges (an owned domain reads 0) once the copy has it, and the copy
 * is a snapshot: what came before it is in too. On SQLite it is there at once.
 */
async function seenByServe(server: ServerProcess): Promise<void> {
  const probe = `p${++probes}.test`;
  const r = await runMain([
    "user",
    "domains",
    "probe",
    "--add",
    probe,
    "--config",
    server.configPath,
  ]);
  assertEquals(r.code, 0, r.stderr);
  await until(`serve sees ${probe}`, async () => (await waitingGauge(server, probe)) === 0);
}

async function userDomains(server: ServerProcess, ...args: string[]): Promise<void> {
  const r = await runMain(["user", "domains", ...args, "--config", server.configPath]);
  assertEquals(r.code, 0, r.stderr);
  await seenByServe(server);
}

function atrn(
  server: ServerProcess,
  user: string,
  domains: string,
  more: Partial<CustomerScript> = {},
) {
  return runScriptedCustomer({
    port: server.odmr[0]?.port ?? 0,
    auth: { mechanism: "CRAM-MD5", user, password: PASSWORD },
    atrn: domains,
    ...more,
  });
}

const subjects = (messages: readonly { data: Uint8Array }[]) =>
  messages.map((m) => /\r\nSubject: (\S+)\r\n/.exec(new TextDecoder().decode(m.data))?.[1]);

/** The steps on one backend: `queue` is the config's queue section (none: SQLite). */
async function domainMoves(t: Deno.TestContext, queue?: Record<string, unknown>) {
  const server = await startServer({
    config: { metrics: { listen: "127.0.0.1:0" }, ...(queue === undefined ? {} : { queue }) },
  });
  try {
    await addUser(server.configPath, "carol", ["moved.test", "carol.test"], PASSWORD);
    await addUser(server.configPath, "bob", ["bob.test"], PASSWORD);
    await addUser(server.configPath, "dave", ["gone.test", "dave.test"], PASSWORD);
    await addUser(server.configPath, "probe", ["p0.test"], PASSWORD);
    await seenByServe(server);

    await t.step("moved from carol to bob: only bob collects it", async () => {
      await receive(server, "x@moved.test", "m1");
      await receive(server, "y@carol.test", "c1");
      await userDomains(server, "carol", "--remove", "moved.test");
      await userDomains(server, "bob", "--add", "moved.test");
      match(String((await atrn(server, "carol", "moved.test")).atrnReply), /^450 /);
      // Bare ATRN: her own domains only.
      const bare = await atrn(server, "carol", "");
      match(String(bare.atrnReply), /^250 /);
      assertEquals(subjects(bare.messages), ["c1"]);
      const bob = await atrn(server, "bob", "");
      match(String(bob.atrnReply), /^250 /);
      assertEquals(subjects(bob.messages), ["m1"]);
      assertEquals(bob.messages[0]?.rcpts, ["x@moved.test"]);
    });

    await t.step("moved while carol's drain runs: the drain takes no further message", async () => {
      await userDomains(server, "bob", "--remove", "moved.test");
      await userDomains(server, "carol", "--add", "moved.test");
      for (const s of ["d1", "d2", "d3"]) await receive(server, "x@moved.test", s);
      const carol = await atrn(server, "carol", "moved.test", {
        noPipelining: true,
        beforeDataReply: async (index) => {
          if (index !== 0) return;
          await userDomains(server, "carol", "--remove", "moved.test");
          await userDomains(server, "bob", "--add", "moved.test");
        },
      });
      match(String(carol.atrnReply), /^250 /);
      assertEquals(subjects(carol.messages), ["d1"]);
      const bob = await atrn(server, "bob", "moved.test");
      assertEquals(subjects(bob.messages), ["d2", "d3"]);
    });

    await t.step("taken from dave: held for ATRN, never sent out, shown as other", async () => {
      await receive(server, "z@gone.test", "g1");
      await userDomains(server, "dave", "--remove", "gone.test");
      match(String((await atrn(server, "dave", "gone.test")).atrnReply), /^450 /);
      match(String((await atrn(server, "dave", "")).atrnReply), /^453 /);
      const listed = await queueList(server.configPath) as { recipients: unknown[] }[];
      assertEquals(listed.flatMap((m) => m.recipients), [
        { address: "z@gone.test", domain: "gone.test", status: "queued", route: "atrn" },
      ]);
      assertEquals(await waitingGauge(server, "other"), 1);
      assertEquals(await waitingGauge(server, "gone.test"), undefined);
      const out = events(server).filter((e) => e.proto === "outbound" && e.to !== undefined);
      assertEquals(out, []);
      // A new owner collects it.
      await userDomains(server, "bob", "--add", "gone.test");
      assertEquals(subjects((await atrn(server, "bob", "gone.test")).messages), ["g1"]);
    });
  } finally {
    assertEquals(await server.stop(), 0);
    await removeTestFiles(server);
  }
}

Deno.test(
  "a domain moved between users or taken from its owner while its mail waits",
  (t) => domainMoves(t),
);

await postgresTest(
  "a domain moved between users or taken from its owner while its mail waits (PostgreSQL)",
  async (pg, t) => {
    const url = await pg.createDatabase("domain_moves");
    await domainMoves(t, { backend: "postgres", postgres: { url } });
  },
);
