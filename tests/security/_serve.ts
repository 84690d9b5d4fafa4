/**
 * The real `serve` for the attack tests: started with a config, its users added, and after the
 * test its log checked for crashes and its exit code for 0. Temp files are removed either way.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { addUser, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";

/** A user to add before the test: name, domains, and a password (addUser's default if absent). */
export interface ServeUser {
  readonly name: string;
  readonly domains: readonly string[];
  readonly password?: string;
}

/** Adds `users` through the CLI to the server configured at `configPath`. */
export async function addUsers(configPath: string, users: readonly ServeUser[]): Promise<void> {
  for (const u of users) await addUser(configPath, u.name, u.domains, u.password);
}

/** What no attack may leave in the log: a session or the process failing unexpectedly. */
export const CRASHED = /session_crashed|uncaught|panicked/i;

/** How to start and judge the server. */
export interface ServeOptions {
  /** Added before `fn` runs. */
  readonly users?: readonly ServeUser[];
  /** A data directory prepared earlier (its users already added). */
  readonly dataDir?: string;
  /** The log must not match this after the test; default CRASHED. */
  readonly forbiddenInLog?: RegExp;
}

/** Runs `fn` against a `serve` with `config`, then checks its log and that it exits 0. */
export async function withServe(
  config: Record<string, unknown>,
  fn: (server: ServerProcess) => Promise<void>,
  opts: ServeOptions = {},
): Promise<void> {
  const server = await startServer({
    config,
    ...(opts.dataDir === undefined ? {} : { dataDir: opts.dataDir }),
  });
  try {
    await addUsers(server.configPath, opts.users ?? []);
    await fn(server);
    assert(!(opts.forbiddenInLog ?? CRASHED).test(server.logs()), server.logs());
  } finally {
    assertEquals(await server.stop(), 0, server.logs());
    await removeTestFiles(server);
  }
}
