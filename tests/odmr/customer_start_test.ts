/**
 * Issue 13 (fetch start-up): a poll's files are read and its connection opened by `startPoll`,
 * which `fetch --once` runs before the rest of its modules load; the poll then goes on over that
 * connection instead of opening another, and nothing reaches the network when a file is unusable.
 */
import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { runCustomer } from "../../src/odmr/customer.ts";
import { startPoll } from "../../src/odmr/customer_start.ts";
import type { FetchConfig } from "../../src/config/types.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { startScriptedProvider } from "../_helpers/scripted_provider.ts";
import type { ScriptedProvider } from "../_helpers/scripted_provider.ts";
import { aliceFetchConfig } from "../_helpers/customer_config.ts";

const USER = "alice";
const PASSWORD = "s3cret pass";
const FAST = { connectMs: 5_000, commandMs: 5_000, atrnMs: 5_000, receiverMs: 5_000 };

async function withProvider(
  fn: (
    dir: string,
    provider: ScriptedProvider,
    config: FetchConfig & { hostname: string },
  ) => Promise<void>,
  passwordMode = 0o600,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "odmr-start-" });
  const provider = await startScriptedProvider({
    user: USER,
    password: PASSWORD,
    messages: [{
      from: "s@example.net",
      rcpts: ["a@example.org"],
      body: new TextEncoder().encode("Subject: hi\r\n\r\nbody\r\n"),
    }],
  });
  try {
    await Deno.writeTextFile(`${dir}/password`, `${PASSWORD}\n`);
    await Deno.chmod(`${dir}/password`, passwordMode);
    await fn(dir, provider, aliceFetchConfig(dir, provider.port));
  } finally {
    await provider.close();
    await Deno.remove(dir, { recursive: true });
  }
}

/** Connects once more and waits until the provider accepted it: earlier connections are in. */
async function acceptedAfterProbe(provider: ScriptedProvider): Promise<number> {
  const before = provider.sessions.length;
  const probe = await Deno.connect({ hostname: "127.0.0.1", port: provider.port });
  for (let i = 0; i < 200 && provider.sessions.length === before; i++) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  probe.close();
  return provider.sessions.length - 1;
}

Deno.test("(#13) runCustomer() goes on over the connection startPoll opened: one session, mail delivered", async () => {
  await withProvider(async (_dir, provider, config) => {
    const start = await startPoll(config, FAST.connectMs);
    assert(start.ok && start.connected.ok, "startPoll connected");
    assertEquals(start.files.password, PASSWORD);
    const outcome = await runCustomer(config, { log: NULL_LOGGER, timeouts: FAST, start });
    assertEquals(outcome.exitCode, 0, outcome.message);
    assertEquals(outcome.delivered, 1);
    assertEquals(provider.sessions.length, 1);
  });
});

Deno.test("(#13) startPoll() opens no connection when the password file is unusable", async () => {
  await withProvider(async (_dir, provider, config) => {
    const started = await startPoll(config, FAST.connectMs);
    assert(!started.ok);
    assert(started.message.includes("too open"), started.message);
    assertEquals(await acceptedAfterProbe(provider), 0);
  }, 0o644);
});

Deno.test("(#13) startPoll() reports a refused connect as a value, and runCustomer() exits 5 naming the server", async () => {
  await withProvider(async (_dir, provider, config) => {
    await provider.close();
    const started = await startPoll(config, FAST.connectMs);
    assert(started.ok && !started.connected.ok);
    const outcome = await runCustomer(config, {
      log: NULL_LOGGER,
      timeouts: FAST,
      start: started,
    });
    assertEquals(outcome.exitCode, 5);
    assert(
      outcome.message.includes(`Cannot connect to "127.0.0.1:${provider.port}"`),
      outcome.message,
    );
  });
});
