/**
 * Outbound DKIM keys are read once per batch and From domain (a directory listing and PEM
 * parse, or a SELECT, per message before), the ownership check still runs per message, and a
 * key added while serve runs signs from the next batch on (no restart).
 */
import { deepStrictEqual as assertEquals, equal, rejects } from "node:assert/strict";
import { CredentialStore } from "../../src/auth/store.ts";
import { batchSigningKeys } from "../../src/cli/_serve_outbound.ts";
import { type DkimKeys, DkimKeyStore } from "../../src/dkim/keys.ts";
import type { DkimKey } from "../../src/dkim/signer.ts";
import type { QueuedMessage } from "../../src/queue/types.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

function from(mailFrom: string): QueuedMessage {
  return { id: "m", receivedAt: 0, mailFrom, size: 1, params: {}, recipients: [] };
}

/** The store, counting the reads that reach it. */
function counted(keys: DkimKeys): { keys: DkimKeys; reads: string[] } {
  const reads: string[] = [];
  const wrapped = Object.create(keys) as DkimKeys;
  wrapped.keysFor = (domain: string) => {
    reads.push(domain);
    return keys.keysFor(domain);
  };
  return { keys: wrapped, reads };
}

const selectors = (keys: readonly DkimKey[]) => keys.map((k) => k.selector).sort();

Deno.test("batchSigningKeys reads each From domain's keys once per batch; a new key signs from the next batch on", async () => {
  await withTempDataDir(async (dir) => {
    const credentials = CredentialStore.open(dir);
    try {
      await credentials.addUser("alice", "alice-password-1", ["example.org", "example.net"]);
      await credentials.addUser("mallory", "mallory-password-1", ["evil.test"]);
      const store = new DkimKeyStore(dir);
      await store.generate("example.org", "one", "ed25519");
      await store.generate("example.net", "net", "ed25519");
      const { keys, reads } = counted(store);

      const batch = batchSigningKeys(keys, credentials);
      for (let i = 0; i < 5; i++) {
        assertEquals(selectors(await batch("example.org", from("alice@example.org"))), ["one"]);
      }
      assertEquals(selectors(await batch("example.net", from("alice@example.org"))), ["net"]);
      // Someone else's mail with alice's domain in From: still no signature, from the cache too.
      assertEquals(await batch("example.org", from("mallory@evil.test")), []);
      assertEquals(reads, ["example.org", "example.net"]);

      // A key added while serve runs: the batch under way keeps what it read...
      await store.generate("example.org", "two", "ed25519");
      assertEquals(selectors(await batch("example.org", from("alice@example.org"))), ["one"]);
      // ...and the next batch signs with it, without a restart.
      const next = batchSigningKeys(keys, credentials);
      assertEquals(selectors(await next("example.org", from("alice@example.org"))), ["one", "two"]);
      equal(reads.length, 3);
    } finally {
      credentials.close();
    }
  });
});

Deno.test("batchSigningKeys does not keep a failed read: the next message of the batch reads again", async () => {
  await withTempDataDir(async (dir) => {
    const credentials = CredentialStore.open(dir);
    try {
      await credentials.addUser("alice", "alice-password-1", ["example.org"]);
      const store = new DkimKeyStore(dir);
      await store.generate("example.org", "one", "ed25519");
      let fail = true;
      const keys = Object.create(store) as DkimKeys;
      keys.keysFor = (domain: string) =>
        fail ? Promise.reject(new Error("database went away")) : store.keysFor(domain);
      const batch = batchSigningKeys(keys, credentials);
      await rejects(batch("example.org", from("alice@example.org")), /went away/);
      fail = false;
      assertEquals(selectors(await batch("example.org", from("alice@example.org"))), ["one"]);
    } finally {
      credentials.close();
    }
  });
});
