/**
 * Domain owners remembered between RCPTs (#13): asked again, a domain costs no query, and
 * every way users or domains change is seen at the next lookup (another connection, another
 * store on the same connection, the PostgreSQL backend reloading its in-memory copy).
 */
import { equal } from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { DomainOwners, MAX_REMEMBERED_DOMAINS } from "../../src/auth/_domain_owners.ts";
import { CredentialStore } from "../../src/auth/store.ts";
import { dumpTables, loadTables } from "../../src/queue/pg/auth_mirror.ts";
import { FAST_STORE, withStore } from "./_fixtures.ts";

/** DomainOwners over `db` whose query is counted and answers `owners`. */
function counted(db: DatabaseSync, owners: Record<string, string>) {
  const asked: string[] = [];
  const cache = new DomainOwners(db, (d) => {
    asked.push(d);
    return owners[d];
  });
  return { cache, asked };
}

Deno.test("DomainOwners asks the database once per domain while nothing changes (#13)", () => {
  const db = new DatabaseSync(":memory:");
  try {
    const { cache, asked } = counted(db, { "example.org": "alice" });
    for (let i = 0; i < 3; i++) {
      equal(cache.ownerOf("Example.ORG"), "alice");
      equal(cache.ownerOf("example.com"), undefined);
      equal(cache.ownerOf("not a domain"), undefined);
    }
    // Normalised before the query; an invalid name never reaches it.
    equal(asked.join(" "), "example.org example.com");
  } finally {
    db.close();
  }
});

Deno.test("DomainOwners remembers at most MAX_REMEMBERED_DOMAINS domains (N, N+1) (#13)", () => {
  const db = new DatabaseSync(":memory:");
  try {
    const { cache, asked } = counted(db, { "d0.example": "alice" });
    for (let i = 0; i < MAX_REMEMBERED_DOMAINS; i++) cache.ownerOf(`d${i}.example`);
    equal(asked.length, MAX_REMEMBERED_DOMAINS);
    // N remembered: the first is still known.
    equal(cache.ownerOf("d0.example"), "alice");
    equal(asked.length, MAX_REMEMBERED_DOMAINS);
    // N+1: everything was forgotten to make room, so the first is asked again.
    cache.ownerOf(`d${MAX_REMEMBERED_DOMAINS}.example`);
    equal(cache.ownerOf("d0.example"), "alice");
    equal(asked.length, MAX_REMEMBERED_DOMAINS + 2);
  } finally {
    db.close();
  }
});

Deno.test("CredentialStore.ownerOf sees a change made by another store on the same connection (#13)", async () => {
  await withStore(async (store, dir) => {
    const db = new DatabaseSync(`${dir}/odmr.db`);
    try {
      const reader = new CredentialStore(db);
      const writer = new CredentialStore(db, FAST_STORE);
      equal(reader.ownerOf("example.org"), undefined);
      await writer.addUser("alice", "pw", ["example.org"]);
      equal(reader.ownerOf("example.org"), "alice");
      writer.addDomains("alice", ["example.com"]);
      equal(reader.ownerOf("example.com"), "alice");
      writer.removeDomains("alice", ["example.com"]);
      equal(reader.ownerOf("example.com"), undefined);
      writer.removeUser("alice");
      equal(reader.ownerOf("example.org"), undefined);
      // The store of the data dir (another connection) sees them too, as before.
      equal(store.ownerOf("example.org"), undefined);
    } finally {
      db.close();
    }
  });
});

Deno.test("CredentialStore.ownerOf over the PostgreSQL backend's copy sees each reload (#13)", async () => {
  // The copy of a node is reloaded by loadTables (src/queue/pg/auth_mirror.ts) on the same
  // in-memory connection the store reads.
  const source = new DatabaseSync(":memory:");
  const copy = new DatabaseSync(":memory:");
  try {
    const edits = new CredentialStore(source, FAST_STORE);
    const node = new CredentialStore(copy);
    equal(node.ownerOf("example.org"), undefined);
    await edits.addUser("alice", "pw", ["example.org"]);
    loadTables(copy, dumpTables(source));
    equal(node.ownerOf("example.org"), "alice");
    edits.removeUser("alice");
    loadTables(copy, dumpTables(source));
    equal(node.ownerOf("example.org"), undefined);
  } finally {
    copy.close();
    source.close();
  }
});
