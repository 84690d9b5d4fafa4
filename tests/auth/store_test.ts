import { deepStrictEqual as assertEquals, equal, ok, rejects, throws } from "node:assert/strict";
import { join } from "node:path";
import { CredentialStore, UserError } from "../../src/auth/store.ts";
import { cramDigest } from "../../src/auth/cram_md5.ts";
import { verifyPassword } from "../../src/auth/password_hash.ts";
import { FAST_STORE, withStore } from "./_fixtures.ts";

Deno.test("CredentialStore round-trips users, domains and verifiers", async () => {
  await withStore(async (store) => {
    await store.addUser("alice", "s3cret-pw", ["Example.ORG.", "bücher.example"]);
    await store.addUser("bob", "other", ["example.net"]);
    assertEquals(store.listUsers(), [
      { name: "alice", domains: ["example.org", "xn--bcher-kva.example"] },
      { name: "bob", domains: ["example.net"] },
    ]);
    assertEquals(store.domainsOf("alice"), ["example.org", "xn--bcher-kva.example"]);
    equal(store.ownerOf("EXAMPLE.org"), "alice");
    equal(store.ownerOf("bücher.example."), "alice");
    equal(store.ownerOf("example.com"), undefined);
    equal(store.ownerOf("not a domain"), undefined);
    const v = store.getVerifiers("alice");
    ok(v?.scramSha256 && v.cramMd5 && v.passwordHash);
    equal(v.scramSha256.iterations, 4096);
    equal(await verifyPassword("s3cret-pw", v.passwordHash), true);
    const challenge = new TextEncoder().encode("<1.2@host>");
    ok(cramDigest(v.cramMd5, challenge).length === 32);
    equal(store.getVerifiers("carol"), undefined);
  });
});

Deno.test("CredentialStore never writes the password to the database files", async () => {
  await withStore(async (store, dir) => {
    const password = "Unmistakable-Pa55word";
    await store.addUser("alice", password, ["example.org"]);
    await store.setPassword("alice", password + "2");
    const needles = [password, password + "2"].map((p) => new TextEncoder().encode(p));
    for await (const entry of Deno.readDir(dir)) {
      const bytes = await Deno.readFile(join(dir, entry.name));
      for (const needle of needles) {
        ok(indexOf(bytes, needle) < 0, `password found in ${entry.name}`);
      }
    }
  });
});

Deno.test("CredentialStore refuses a domain that already belongs to another user", async () => {
  await withStore(async (store) => {
    await store.addUser("bob", "pw", ["example.org"]);
    await rejects(
      store.addUser("alice", "pw", ["example.com", "EXAMPLE.org"]),
      new UserError('Domain "example.org" already belongs to user "bob"'),
    );
    equal(store.hasUser("alice"), false, "the refused add left nothing behind");
    equal(store.ownerOf("example.com"), undefined);
    await store.addUser("alice", "pw", ["example.com"]);
    throws(
      () => store.addDomains("alice", ["example.org"]),
      new UserError('Domain "example.org" already belongs to user "bob"'),
    );
  });
});

Deno.test("CredentialStore refuses a duplicate user, a bad name and a bad domain", async () => {
  await withStore(async (store) => {
    await store.addUser("alice", "pw", ["example.org"]);
    await rejects(
      store.addUser("alice", "pw", ["example.com"]),
      new UserError('User "alice" already exists'),
    );
    await rejects(store.addUser("bad name", "pw", []), UserError);
    await rejects(store.addUser("a".repeat(65), "pw", []), UserError);
    await store.addUser("a".repeat(64), "pw", []);
    await rejects(store.addUser("carol", "pw", ["localhost"]), /Invalid domain "localhost"/);
    await rejects(store.addUser("carol", "", []), /empty password/);
    await rejects(store.setPassword("nobody", "pw"), new UserError('User "nobody" does not exist'));
  });
});

Deno.test("CredentialStore adds and removes domains, and removeUser frees them", async () => {
  await withStore(async (store) => {
    await store.addUser("alice", "pw", ["example.org"]);
    store.addDomains("alice", ["example.com", "example.org"]);
    assertEquals(store.domainsOf("alice"), ["example.com", "example.org"]);
    throws(
      () => store.removeDomains("alice", ["example.net"]),
      new UserError('Domain "example.net" does not belong to user "alice"'),
    );
    store.removeDomains("alice", ["EXAMPLE.com"]);
    assertEquals(store.domainsOf("alice"), ["example.org"]);
    store.removeUser("alice");
    equal(store.ownerOf("example.org"), undefined);
    assertEquals(store.listUsers(), []);
    throws(() => store.removeUser("alice"), new UserError('User "alice" does not exist'));
  });
});

Deno.test("CredentialStore.setPassword() replaces every verifier", async () => {
  await withStore(async (store) => {
    await store.addUser("alice", "old", ["example.org"]);
    const before = store.getVerifiers("alice");
    await store.setPassword("alice", "new");
    const after = store.getVerifiers("alice");
    ok(before?.passwordHash && after?.passwordHash);
    equal(await verifyPassword("new", after.passwordHash), true);
    equal(await verifyPassword("old", after.passwordHash), false);
    ok(before.cramMd5 && after.cramMd5);
    ok(before.cramMd5.inner[0] !== after.cramMd5.inner[0]);
  });
});

Deno.test("CredentialStore sees changes made through another connection at once", async () => {
  await withStore(async (store, dir) => {
    const other = CredentialStore.open(dir, FAST_STORE);
    try {
      await other.addUser("alice", "pw", ["example.org"]);
      equal(store.ownerOf("example.org"), "alice");
      other.removeUser("alice");
      equal(store.ownerOf("example.org"), undefined);
    } finally {
      other.close();
    }
  });
});

function indexOf(hay: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= hay.length; i++) {
    for (let j = 0; j < needle.length; j++) if (hay[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

Deno.test("CredentialStore lookups on every RCPT do not pile up native memory, and still see changes (#13)", async () => {
  // A compiled statement per lookup used to stay resident until V8 collected its wrapper
  // (about 1.3 KB each, invisible to V8's heap accounting): 40+ MB over 30k lookups.
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./_lookup_rss.ts", import.meta.url).pathname],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  ok(out.success, "the lookup script ran");
  const grown = Number(new TextDecoder().decode(out.stdout).trim());
  ok(grown < 15, `RSS grew ${grown} MB over 30k lookups`);
  await withStore(async (store) => {
    await store.addUser("alice", "pw", ["example.org"]);
    equal(store.ownerOf("example.org"), "alice");
    store.addDomains("alice", ["example.com"]);
    equal(store.ownerOf("example.com"), "alice", "a reused statement reads the new row");
    store.removeUser("alice");
    equal(store.ownerOf("example.org"), undefined);
  });
});
