/**
 * (review wt17-rev1) Out of file descriptors: `serve` under a small `ulimit -n` (prlimit) with
 * TLS configured, so its SMTP and ODMR ports accept on node:net. Clients hold more connections
 * than it has descriptors (accept fails with EMFILE), then go away: both ports must accept and
 * greet again. On Deno 2.9.6 a node:net server stops accepting for good after one failed accept
 * (no error event, the backlog fills and is never served): a burst of connections from one
 * address, or a handshake flood on an implicit-TLS port, shut the MX until a restart.
 * (session 18) Serve says so: one `fd_exhausted` line for the episode (none before, whatever the
 * number of failed accepts), then `fd_recovered`; also with plain listeners (Deno.listen, whose
 * failed accepts come back every 100 ms). Before, nothing was logged at all.
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { testCaOrSkip } from "../_helpers/certs.ts";
import { removeTestFiles, startServer } from "../_helpers/server_process.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { toolTest } from "../_helpers/tools.ts";
import { eventsNamed } from "../_helpers/log_lines.ts";

const NAME = "fd exhaustion";
/** serve's descriptor limit: its own files (SQLite, bodies, listeners) take ~40 of them. */
const NOFILE = 128;
/** Connections held at once: well past NOFILE. */
const HELD = 2 * NOFILE;

/** The first line the server sends on a new connection, or "" if none within `ms`. */
async function greetingOf(port: number, ms: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const timer = setTimeout(() => conn.close(), ms);
  try {
    const buf = new Uint8Array(512);
    const n = await conn.read(buf).catch(() => null);
    return n === null ? "" : new TextDecoder().decode(buf.subarray(0, n)).split("\r\n")[0] ?? "";
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // Closed by the timer.
    }
  }
}

/** Polls `port` for a greeting, for at most `ms` in all. */
async function greetsWithin(port: number, ms: number): Promise<string> {
  const until = Date.now() + ms;
  let last = "";
  while (Date.now() < until && last === "") last = await greetingOf(port, 1_000);
  return last;
}

/** Runs out of descriptors on both ports, gives them back; `config` merged over the limits. */
async function exhaustAndRecover(config: Record<string, unknown>): Promise<void> {
  let server: ServerProcess | undefined;
  const held: Deno.Conn[] = [];
  try {
    server = await startServer({
      prefix: ["prlimit", `--nofile=${NOFILE}`, "--"],
      config: {
        ...config,
        // The connection limits do not stop this: they count sessions, each accepted first.
        smtp: { max_connections: HELD, max_connections_per_ip: HELD },
      },
    });
    const smtp = server.smtp[0]!.port;
    const odmr = server.odmr[0]!.port;
    assertMatch(await greetingOf(smtp, 5_000), /^220 /);
    for (let i = 0; i < HELD; i++) {
      held.push(await Deno.connect({ hostname: "127.0.0.1", port: i % 2 === 0 ? smtp : odmr }));
    }
    // The last ones wait in the backlog: serve has no descriptor left for them (or this one).
    assertEquals(await greetingOf(smtp, 1_000), "", "serve ran out of descriptors");
    for (const c of held.splice(0)) c.close();
    assertMatch(await greetsWithin(smtp, 10_000), /^220 /, "the SMTP port accepts again");
    assertMatch(await greetsWithin(odmr, 10_000), /^220 /, "the ODMR port accepts again");
    assertEquals(await server.stop(), 0, server.logs());
    const logs = server.logs();
    assertEquals(eventsNamed(logs, "fd_exhausted").length, 1, logs);
    assertEquals(eventsNamed(logs, "fd_recovered").length >= 1, true, logs);
  } finally {
    for (const c of held) c.close();
    if (server !== undefined) {
      await server.kill9();
      await removeTestFiles(server);
    }
  }
}

await toolTest(`${NAME}: SMTP and ODMR accept again once descriptors are free`, [
  "prlimit",
  "openssl",
], async () => {
  const ca = await testCaOrSkip(NAME);
  if (ca === undefined) return;
  try {
    await exhaustAndRecover({ tls: { cert: ca.certPath, key: ca.keyPath } });
  } finally {
    await ca.cleanup();
  }
});

await toolTest(`${NAME}: plain listeners log the episode once too (session 18)`, [
  "prlimit",
], async () => {
  await exhaustAndRecover({});
});
