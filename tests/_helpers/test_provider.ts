/**
 * The provider's ODMR session for session tests: a temporary SQLite queue and credential store
 * with user `alice` / `alice-pw` for example.org, and the session on a Conn with test settings
 * (plaintext allowed, an AUTH throttle without delay, a 60 s lease).
 */
import type { Conn } from "../../src/net/conn.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { CredentialStore } from "../../src/auth/store.ts";
import { AuthThrottle } from "../../src/auth/throttle.ts";
import { runProviderSession } from "../../src/odmr/provider.ts";
import type { ProviderOptions } from "../../src/odmr/provider.ts";
import type { Logger } from "../../src/observe/log.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { withTempDataDir } from "./temp_db.ts";

/** What a provider session runs on. */
export interface ProviderStores {
  readonly store: SqliteQueueStore;
  readonly credentials: CredentialStore;
}

/** Runs `fn` with a fresh queue and credential store holding `alice`; closes and removes them. */
export async function withProviderStores<T>(fn: (s: ProviderStores) => Promise<T>): Promise<T> {
  return await withTempDataDir(async (dataDir) => {
    const db = openDatabase(dataDir);
    const store = new SqliteQueueStore(db, { logger: NULL_LOGGER });
    try {
      const credentials = new CredentialStore(db, { scramIterations: 4096 });
      await credentials.addUser("alice", "alice-pw", ["example.org"]);
      return await fn({ store, credentials });
    } finally {
      await store.close();
    }
  });
}

/** Runs the provider session on `conn` to its end (it closes `conn`). */
export function runTestProvider(
  conn: Conn,
  stores: ProviderStores,
  opts: { readonly log?: Logger; readonly options?: Partial<ProviderOptions> } = {},
): Promise<void> {
  return runProviderSession(conn, {
    store: stores.store,
    credentials: stores.credentials,
    throttle: new AuthThrottle({ baseDelayMs: 0 }),
    log: opts.log ?? NULL_LOGGER,
    options: {
      hostname: "odmr.test",
      requireTls: false,
      commandTimeoutMs: 5_000,
      leaseSeconds: 60,
      ...opts.options,
    },
  });
}
