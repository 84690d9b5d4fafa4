/** Shared test fixtures for auth tests: cheap hashing costs (production uses the defaults). */
import { CredentialStore } from "../../src/auth/store.ts";

/** SCRAM at the RFC minimum and scrypt at N=1024 so the suite stays fast. */
export const FAST_STORE = { scramIterations: 4096, scryptParams: { logN: 10, r: 8, p: 1 } };

/** Runs `body` with a store over a fresh temp data dir, then removes it. */
export async function withStore(
  body: (store: CredentialStore, dir: string) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "odmr-auth-" });
  const store = CredentialStore.open(dir, FAST_STORE);
  try {
    await body(store, dir);
  } finally {
    store.close();
    await Deno.remove(dir, { recursive: true });
  }
}
