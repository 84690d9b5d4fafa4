/**
 * (#10 item 5) AUTH throttling on the ODMR port, over real 127.0.0.x sockets against the
 * provider session in process (so the throttle's tuning can be small): a neighbour's failures
 * delay the owner's correct password but never refuse it; the caps per address and per account
 * answer `454 4.7.0` without revealing the outcome, except to the owner at a known address.
 * Fake SCRAM salts for unknown names survive a restart of the real `serve`.
 */
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import net from "node:net";
import { Buffer } from "node:buffer";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { CredentialStore } from "../../src/auth/store.ts";
import { AuthThrottle } from "../../src/auth/throttle.ts";
import { createSaslClient } from "../../src/auth/sasl_client.ts";
import type { AuthThrottleOptions } from "../../src/auth/throttle.ts";
import { FAKE_SALT_KEY_FILE } from "../../src/auth/fake_salt_key.ts";
import { SocketConn } from "../../src/net/conn.ts";
import { runProviderSession } from "../../src/odmr/provider.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { addUser, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { cramResponse, greeted } from "../security/_raw.ts";

const PW = { alice: "alice-pw", carol: "carol-pw" } as const;
// Failures leak away slowly enough that none is forgiven during a test.
const HOUR_MS = 3_600_000;

/** A provider on 127.0.0.1:0 with `throttle`; runs `fn` with its port. */
async function withProvider(
  tuning: AuthThrottleOptions,
  fn: (port: number) => Promise<void>,
): Promise<void> {
  await withTempDataDir(async (dataDir) => {
    const db = openDatabase(dataDir);
    const store = new SqliteQueueStore(db, { logger: NULL_LOGGER });
    const credentials = new CredentialStore(db, { scramIterations: 4096 });
    const throttle = new AuthThrottle(tuning);
    const sessions: Promise<void>[] = [];
    const server = net.createServer({ allowHalfOpen: true }, (socket) => {
      sessions.push(runProviderSession(new SocketConn(socket), {
        store,
        credentials,
        throttle,
        log: NULL_LOGGER,
        options: {
          hostname: "odmr.test",
          requireTls: false,
          commandTimeoutMs: 10_000,
          leaseSeconds: 60,
        },
      }));
    });
    try {
      await credentials.addUser("alice", PW.alice, ["example.org"]);
      await credentials.addUser("carol", PW.carol, ["carol.example"]);
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
      const addr = server.address();
      assert(addr !== null && typeof addr === "object");
      await fn(addr.port);
    } finally {
      await new Promise<void>((r) => server.close(() => r()));
      await Promise.all(sessions);
      store.close();
    }
  });
}

/** One connection from `from`: EHLO, CRAM-MD5 as `user`; the final reply and its wait. */
async function login(
  port: number,
  from: string,
  user: string,
  password: string,
): Promise<{ reply: string; ms: number }> {
  using c = await greeted(port, from);
  const ch = await c.command("AUTH CRAM-MD5");
  assertMatch(ch, /^334 /);
  const response = cramResponse(ch, user, password);
  const started = Date.now();
  const reply = await c.command(response);
  return { reply, ms: Date.now() - started };
}

Deno.test("(#10) a neighbour's failures delay the owner's correct password, never refuse it", async () => {
  const tuning = { baseDelayMs: 100, maxDelayMs: 400, ipCapFailures: 100, leakIntervalMs: HOUR_MS };
  await withProvider(tuning, async (port) => {
    for (let i = 0; i < 3; i++) {
      assertMatch((await login(port, "127.0.0.51", `guess${i}`, "x")).reply, /^535 5\.7\.8 /);
    }
    const owner = await login(port, "127.0.0.51", "alice", PW.alice);
    assertMatch(owner.reply, /^235 /);
    assert(owner.ms >= 350, `the reply was held: ${owner.ms} ms`);
    const elsewhere = await login(port, "127.0.0.52", "carol", PW.carol);
    assertMatch(elsewhere.reply, /^235 /);
    assert(elsewhere.ms < 300, `other addresses are not delayed: ${elsewhere.ms} ms`);
  });
});

Deno.test("(#10) the address cap: 454 4.7.0 for everyone there except the owner at home", async () => {
  const tuning = { baseDelayMs: 1, maxDelayMs: 1, ipCapFailures: 3, leakIntervalMs: HOUR_MS };
  await withProvider(tuning, async (port) => {
    assertMatch((await login(port, "127.0.0.53", "alice", PW.alice)).reply, /^235 /);
    for (let i = 0; i < 2; i++) {
      assertMatch((await login(port, "127.0.0.53", `guess${i}`, "x")).reply, /^535 5\.7\.8 /);
    }
    // N-1 failures: a right password from a new account is still answered.
    assertMatch((await login(port, "127.0.0.53", "carol", PW.carol)).reply, /^235 /);
    assertMatch((await login(port, "127.0.0.53", "guess2", "x")).reply, /^454 4\.7\.0 /);
    // N failures: the cap holds, and tells nothing about the password.
    assertMatch((await login(port, "127.0.0.53", "guess3", "x")).reply, /^454 4\.7\.0 /);
    assertMatch((await login(port, "127.0.0.53", "alice", PW.alice)).reply, /^235 /);
  });
});

Deno.test("(#10) the account cap: many addresses against one account get 454, the owner gets in", async () => {
  const tuning = { baseDelayMs: 1, maxDelayMs: 1, accountCapFailures: 3, leakIntervalMs: HOUR_MS };
  await withProvider(tuning, async (port) => {
    assertMatch((await login(port, "127.0.0.61", "alice", PW.alice)).reply, /^235 /);
    for (const from of ["127.0.0.62", "127.0.0.63"]) {
      assertMatch((await login(port, from, "alice", "guess")).reply, /^535 5\.7\.8 /);
    }
    assertMatch((await login(port, "127.0.0.64", "alice", "guess")).reply, /^454 4\.7\.0 /);
    assertMatch((await login(port, "127.0.0.65", "alice", PW.alice)).reply, /^454 4\.7\.0 /);
    assertMatch((await login(port, "127.0.0.65", "carol", PW.carol)).reply, /^235 /);
    assertMatch((await login(port, "127.0.0.61", "alice", PW.alice)).reply, /^235 /);
  });
});

/**
 * One connection from `from`: EHLO, SCRAM-SHA-256 as `user` with our client, up to the first
 * reply after the client-final message (a wrong proof gets its final reply there; a right one
 * gets the server-final `334 v=…` first).
 */
async function scramLogin(
  port: number,
  from: string,
  user: string,
  password: string,
): Promise<string> {
  using c = await greeted(port, from);
  const client = createSaslClient("SCRAM-SHA-256", { user, password });
  const first = Buffer.from(client.initialResponse() ?? new Uint8Array(0)).toString("base64");
  const serverFirst = await c.command(`AUTH SCRAM-SHA-256 ${first}`);
  assertMatch(serverFirst, /^334 /);
  const final = await client.next(Buffer.from(serverFirst.slice(4), "base64"));
  return await c.command(Buffer.from(final).toString("base64"));
}

Deno.test("(#10) the account cap tells nothing about a SCRAM-SHA-256 password either", async () => {
  const tuning = { baseDelayMs: 1, maxDelayMs: 1, accountCapFailures: 3, leakIntervalMs: HOUR_MS };
  await withProvider(tuning, async (port) => {
    for (const from of ["127.0.0.72", "127.0.0.73"]) {
      assertMatch(await scramLogin(port, from, "alice", "guess"), /^535 5\.7\.8 /);
    }
    // Capped: a wrong guess and the right password from a new address must look alike.
    assertMatch(await scramLogin(port, "127.0.0.75", "alice", "guess"), /^454 4\.7\.0 /);
    const right = await scramLogin(port, "127.0.0.76", "alice", PW.alice);
    assertMatch(right, /^454 4\.7\.0 /, `the right password, capped, got ${right}`);
  });
});

/** The salt `serve` shows for `user` in SCRAM-SHA-256's server-first message. */
async function scramSalt(port: number, user: string): Promise<string> {
  using c = await greeted(port);
  const first = Buffer.from(`n,,n=${user},r=abcdefghijklmnop`).toString("base64");
  const r = await c.command(`AUTH SCRAM-SHA-256 ${first}`);
  assertMatch(r, /^334 /);
  const m = /,s=([^,]+),/.exec(Buffer.from(r.slice(4), "base64").toString("latin1"));
  assert(m !== null, r);
  return m[1]!;
}

Deno.test("(#10) the SCRAM salt of an unknown name is the same after a restart, like a real one", async () => {
  const first = await startServer();
  let second: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    await addUser(first.configPath, "alice", ["example.org"], PW.alice);
    const before = {
      ghost: await scramSalt(first.odmr[0]!.port, "ghost"),
      alice: await scramSalt(first.odmr[0]!.port, "alice"),
    };
    assertEquals(await first.stop(), 0, first.logs());
    const key = await Deno.stat(`${first.dataDir}/${FAKE_SALT_KEY_FILE}`);
    assertEquals((key.mode ?? 0) & 0o777, 0o600, "the key is readable by its owner only");
    second = await startServer({ dataDir: first.dataDir });
    const after = {
      ghost: await scramSalt(second.odmr[0]!.port, "ghost"),
      alice: await scramSalt(second.odmr[0]!.port, "alice"),
    };
    assertEquals(after, before);
    assert(before.ghost !== before.alice);
  } finally {
    if (second !== undefined) assertEquals(await second.stop(), 0, second.logs());
    await removeTestFiles(first);
  }
});
