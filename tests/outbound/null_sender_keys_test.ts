/**
 * `MAIL FROM:<>` mail (a user's bounces and auto-replies) has no sender domain to find the
 * key's owner by: it is signed by its From domain only when that domain belongs to the user who
 * submitted it, stored with the message. `<>` mail queued before the queue kept the submitter
 * (SQLite schema step 13) has none and stays unsigned, as do the server's own reports.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { CredentialStore } from "../../src/auth/store.ts";
import { batchSigningKeys } from "../../src/cli/_serve_outbound.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { DkimKeyStore } from "../../src/dkim/keys.ts";
import type { DkimKey } from "../../src/dkim/signer.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { QueuedMessage } from "../../src/queue/types.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { oldQueue } from "../_helpers/queue_fixtures.ts";

function message(mailFrom: string, submitter?: string): QueuedMessage {
  return {
    id: "m",
    receivedAt: 0,
    mailFrom,
    size: 1,
    params: {},
    recipients: [],
    ...(submitter === undefined ? {} : { submitter }),
  };
}

const selectors = (keys: readonly DkimKey[]) => keys.map((k) => k.selector).sort();

Deno.test("<> mail is signed by its From domain only when that domain is its submitter's", async () => {
  await withTempDataDir(async (dir) => {
    const credentials = CredentialStore.open(dir);
    try {
      await credentials.addUser("alice", "alice-password-1", ["example.org"]);
      await credentials.addUser("mallory", "mallory-password-1", ["evil.test"]);
      const store = new DkimKeyStore(dir);
      await store.generate("example.org", "one", "ed25519");
      const keys = batchSigningKeys(store, credentials);
      assertEquals(selectors(await keys("example.org", message("", "alice"))), ["one"]);
      // Another user's <> mail with alice's domain in From (submission refuses it; a row
      // written otherwise still gets no signature).
      assertEquals(await keys("example.org", message("", "mallory")), []);
      // No submitter: the server's own reports, and <> mail queued before this was stored.
      assertEquals(await keys("example.org", message("")), []);
      // A user no longer there: the domain has no owner, nothing signs.
      assertEquals(await keys("example.org", message("", "bob")), []);
      // Mail with a reverse-path keeps the envelope rule, whoever submitted it.
      assertEquals(selectors(await keys("example.org", message("alice@example.org"))), ["one"]);
      assertEquals(await keys("example.org", message("mallory@evil.test", "alice")), []);
    } finally {
      credentials.close();
    }
  });
});

Deno.test("<> mail queued before the submitter was stored has none, and goes out unsigned", async () => {
  await withTempDataDir(async (dir) => {
    oldQueue(
      dir,
      12,
      "INSERT INTO messages (id, received_at, mail_from, size, params, body) " +
        "VALUES ('0000000001AAAAAAAA', 1000, '', 2, '{}', X'6869')",
      "INSERT INTO recipients (message_id, address, domain, route, next_attempt_at) VALUES " +
        "('0000000001AAAAAAAA', 'bob@dest.test', 'dest.test', 'mx', 1000)",
    );
    const queue = new SqliteQueueStore(openDatabase(dir), { now: () => 5000 });
    const credentials = CredentialStore.open(dir);
    try {
      await credentials.addUser("alice", "alice-password-1", ["example.org"]);
      await new DkimKeyStore(dir).generate("example.org", "one", "ed25519");
      const [found] = await queue.list();
      assertEquals([found?.mailFrom, found?.submitter], ["", undefined]);
      const keys = batchSigningKeys(new DkimKeyStore(dir), credentials);
      assertEquals(await keys("example.org", found ?? message("")), []);
      // Submitted now: the submitter is kept, and read back.
      const w = await queue.begin({
        mailFrom: "",
        submitter: "alice",
        params: {},
        recipients: [{ address: "carol@dest.test", domain: "dest.test", route: "mx" }],
      });
      await w.write(new TextEncoder().encode("hi"));
      await w.commit();
      const now = await queue.get(w.id);
      assertEquals(now?.submitter, "alice");
      assertEquals(selectors(await keys("example.org", now ?? message(""))), ["one"]);
    } finally {
      credentials.close();
      await queue.close();
    }
  });
});
