import assert from "node:assert/strict";
import { userCommand, type UserCommandOptions } from "../../src/cli/user.ts";
import { CredentialStore } from "../../src/auth/store.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { UserStateStore } from "../../src/queue/user_state.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { recordingIo, runMain, seedQueue } from "./_queue_seed.ts";

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
const HOUR = 3_600_000;
const FAST = { scramIterations: 4096, scryptParams: { logN: 10, r: 8, p: 1 } };

function opts(extra: Partial<UserCommandOptions> = {}): UserCommandOptions {
  return { storeOptions: FAST, now: () => T0, ...extra };
}

async function run(dataDir: string, argv: string[], stdin: string[] = [], o = opts()) {
  const io = recordingIo(dataDir, { answers: stdin });
  const code = await userCommand(argv, io, o);
  return { code, out: io.out, err: io.err };
}

async function addUser(dataDir: string, name: string, domains: string[], password = "pw") {
  const r = await run(dataDir, [
    "add",
    name,
    ...domains.flatMap((d) => ["--domain", d]),
    "--password-stdin",
  ], [password]);
  assert.equal(r.code, 0, r.err);
}

function recordCollection(dataDir: string, user: string, atMs: number): void {
  const db = openDatabase(dataDir);
  try {
    new UserStateStore(db).recordAtrnSuccess(user, atMs);
  } finally {
    db.close();
  }
}

const BODY = "Subject: x\r\n\r\nbody\r\n"; // 20 bytes

/** alice owns one.test and two.test; bob owns three.test; carol owns nothing with mail. */
async function setUp(dataDir: string): Promise<void> {
  await addUser(dataDir, "alice", ["one.test", "two.test"]);
  await addUser(dataDir, "bob", ["three.test"]);
  await addUser(dataDir, "carol", ["four.test"]);
  await seedQueue(dataDir, [
    // One message for both of alice's domains: counted once for her.
    { to: ["a@one.test", "b@two.test"], at: T0 - 3 * HOUR, body: BODY },
    { to: ["c@two.test"], at: T0 - HOUR, body: BODY },
    // Failed for alice: not waiting.
    { to: ["d@one.test"], at: T0 - 5 * HOUR, body: BODY, failed: ["d@one.test"] },
    { to: ["e@three.test"], at: T0 - 2 * HOUR, body: BODY + "more\r\n" },
  ]);
  recordCollection(dataDir, "alice", T0 - 5 * 60_000);
}

Deno.test("user list --json adds waiting messages, bytes, oldest waiting and last collection (#11)", async () => {
  await withTempDataDir(async (dataDir) => {
    await setUp(dataDir);
    const r = await run(dataDir, ["list", "--json"]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out), [
      {
        name: "alice",
        domains: ["one.test", "two.test"],
        waiting_messages: 2,
        waiting_bytes: 40,
        oldest_waiting_at: new Date(T0 - 3 * HOUR).toISOString(),
        last_collection_at: new Date(T0 - 5 * 60_000).toISOString(),
        certificates: [],
      },
      {
        name: "bob",
        domains: ["three.test"],
        waiting_messages: 1,
        waiting_bytes: 26,
        oldest_waiting_at: new Date(T0 - 2 * HOUR).toISOString(),
        last_collection_at: null,
        certificates: [],
      },
      {
        name: "carol",
        domains: ["four.test"],
        waiting_messages: 0,
        waiting_bytes: 0,
        oldest_waiting_at: null,
        last_collection_at: null,
        certificates: [],
      },
    ]);
  });
});

Deno.test("user list prints a table with ages, and says so when there are no users", async () => {
  await withTempDataDir(async (dataDir) => {
    const empty = await run(dataDir, ["list"]);
    assert.equal(empty.code, 0);
    assert.match(empty.out, /^No users/);
    await setUp(dataDir);
    const r = await run(dataDir, ["list"]);
    assert.equal(r.code, 0, r.err);
    const rows = r.out.trimEnd().split("\n").map((l) => l.split(/\s{2,}/));
    assert.deepEqual(rows, [
      ["NAME", "DOMAINS", "WAITING", "BYTES", "OLDEST", "LAST COLLECTION"],
      ["alice", "one.test,two.test", "2", "40", "3h", "5m ago"],
      ["bob", "three.test", "1", "26", "2h", "never"],
      ["carol", "four.test", "0", "0", "-", "never"],
    ]);
  });
});

Deno.test("user show NAME --json gives one user with its figures per domain", async () => {
  await withTempDataDir(async (dataDir) => {
    await setUp(dataDir);
    const r = await run(dataDir, ["show", "alice", "--json"]);
    assert.equal(r.code, 0, r.err);
    assert.deepEqual(JSON.parse(r.out), {
      name: "alice",
      domains: ["one.test", "two.test"],
      waiting_messages: 2,
      waiting_bytes: 40,
      oldest_waiting_at: new Date(T0 - 3 * HOUR).toISOString(),
      last_collection_at: new Date(T0 - 5 * 60_000).toISOString(),
      certificates: [],
      waiting_by_domain: [
        {
          domain: "one.test",
          waiting_messages: 1,
          waiting_bytes: 20,
          oldest_waiting_at: new Date(T0 - 3 * HOUR).toISOString(),
        },
        {
          domain: "two.test",
          waiting_messages: 2,
          waiting_bytes: 40,
          oldest_waiting_at: new Date(T0 - 3 * HOUR).toISOString(),
        },
      ],
    });
    const text = await run(dataDir, ["show", "bob"]);
    assert.equal(text.code, 0, text.err);
    assert.match(text.out, /^User: +bob$/m);
    assert.match(text.out, /^Waiting: +1 message, 26 bytes$/m);
    assert.match(text.out, /^Oldest waiting: +2026-01-10T10:00:00Z \(2h ago\)$/m);
    assert.match(text.out, /^Last collection: +never$/m);
    assert.match(text.out, /^ {2}three\.test {2}1 message, 26 bytes, oldest 2h old$/m);
  });
});

Deno.test("user show of an unknown user exits 1; bad arguments exit 2", async () => {
  await withTempDataDir(async (dataDir) => {
    const r = await run(dataDir, ["show", "nobody"]);
    assert.equal(r.code, 1);
    assert.equal(r.err, 'error: User "nobody" does not exist\n');
    assert.equal((await run(dataDir, ["show"])).code, 2);
    assert.equal((await run(dataDir, ["show", "a", "b"])).code, 2);
    assert.equal((await run(dataDir, ["show", "a", "--yaml"])).code, 2);
  });
});

Deno.test("user test exits 0 when every stored verifier accepts the password, 3 otherwise (#11)", async () => {
  await withTempDataDir(async (dataDir) => {
    await addUser(dataDir, "alice", ["one.test"], "correct horse");
    const good = await run(dataDir, ["test", "alice", "--password-stdin"], ["correct horse"]);
    assert.equal(good.code, 0, good.err);
    assert.equal(
      good.out,
      'Password of user "alice" matches (SCRAM-SHA-256, CRAM-MD5, PLAIN/LOGIN)\n',
    );
    const bad = await run(dataDir, ["test", "alice", "--password-stdin"], ["correct hors"]);
    assert.equal(bad.code, 3);
    assert.equal(bad.err, 'error: Password of user "alice" does not match\n');
    assert.equal(bad.out, "");
    const unknown = await run(dataDir, ["test", "bob", "--password-stdin"], ["x"]);
    assert.equal(unknown.code, 3);
    assert.equal(unknown.err, 'error: User "bob" does not exist\n');
    // The password never appears in any output.
    assert.ok(![good, bad].some((r) => (r.out + r.err).includes("correct hors")));
  });
});

Deno.test("user test names the verifiers that disagree and exits 3", async () => {
  await withTempDataDir(async (dataDir) => {
    await addUser(dataDir, "alice", ["one.test"], "old password");
    // Another password's CRAM-MD5 midstates under alice: a half-applied change.
    await addUser(dataDir, "other", ["two.test"], "new password");
    const db = openDatabase(dataDir);
    try {
      new CredentialStore(db);
      db.prepare(
        "UPDATE users SET cram_md5 = (SELECT cram_md5 FROM users WHERE name = 'other') " +
          "WHERE name = 'alice'",
      ).run();
    } finally {
      db.close();
    }
    const r = await run(dataDir, ["test", "alice", "--password-stdin"], ["old password"]);
    assert.equal(r.code, 3);
    assert.equal(
      r.err,
      'error: Password of user "alice" matches SCRAM-SHA-256, PLAIN/LOGIN but not CRAM-MD5: ' +
        'the stored verifiers disagree; set it again with "user passwd"\n',
    );
  });
});

Deno.test("user test prompts once on a terminal, and without one needs --password-stdin", async () => {
  await withTempDataDir(async (dataDir) => {
    await addUser(dataDir, "alice", ["one.test"], "pw");
    const prompts: string[] = [];
    const viaPrompt = await run(
      dataDir,
      ["test", "alice"],
      [],
      opts({
        promptPassword: (p) => {
          prompts.push(p);
          return Promise.resolve("pw");
        },
      }),
    );
    assert.equal(viaPrompt.code, 0, viaPrompt.err);
    assert.deepEqual(prompts, ["Password: "]);
    const noTty = await run(dataDir, ["test", "alice"]);
    assert.equal(noTty.code, 2);
    assert.match(noTty.err, /use --password-stdin/);
    const empty = await run(dataDir, ["test", "alice", "--password-stdin"], [""]);
    assert.equal(empty.code, 2);
    assert.match(empty.err, /Empty password/);
  });
});

Deno.test("main.ts user test exits 0 for the password and 3 for another, read from a pipe", async () => {
  await withTempDataDir(async (dir) => {
    const dataDir = `${dir}/data`;
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(config, `data_dir: ${JSON.stringify(dataDir)}\n`);
    const add = await runMain(
      ["user", "add", "alice", "--domain", "one.test", "--password-stdin", "--config", config],
      "s3cret\n",
    );
    assert.equal(add.code, 0, add.stderr);
    const args = ["user", "test", "alice", "--password-stdin", "--config", config];
    const good = await runMain(args, "s3cret\n");
    assert.equal(good.code, 0, good.stderr);
    const bad = await runMain(args, "s3cret!\n");
    assert.equal(bad.code, 3, bad.stderr);
    assert.match(bad.stderr, /does not match/);
    const noPassword = await runMain(["user", "test", "alice", "--config", config], "");
    assert.equal(noPassword.code, 2, noPassword.stderr);
  });
});
