import assert from "node:assert/strict";
import { userCommand, type UserCommandOptions } from "../../src/cli/user.ts";
import { CredentialStore } from "../../src/auth/store.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { onBothBackends, type TargetOpener } from "./_backends.ts";
import { recordCollection, runMain, seedQueue } from "./_queue_seed.ts";
import { recordingIo, type Where } from "./_io.ts";

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);
const HOUR = 3_600_000;
const FAST = { scramIterations: 4096, scryptParams: { logN: 10, r: 8, p: 1 } };

function opts(extra: Partial<UserCommandOptions> = {}): UserCommandOptions {
  return { storeOptions: FAST, now: () => T0, ...extra };
}

async function run(where: Where, argv: string[], stdin: string[] = [], o = opts()) {
  const io = recordingIo(where, { answers: stdin });
  const code = await userCommand(argv, io, o);
  return { code, out: io.out, err: io.err };
}

async function addUser(where: Where, name: string, domains: string[], password = "pw") {
  const r = await run(where, [
    "add",
    name,
    ...domains.flatMap((d) => ["--domain", d]),
    "--password-stdin",
  ], [password]);
  assert.equal(r.code, 0, r.err);
}

const BODY = "Subject: x\r\n\r\nbody\r\n"; // 20 bytes

/** alice owns one.test and two.test; bob owns three.test; carol owns nothing with mail. */
async function setUp(target: Where): Promise<void> {
  await addUser(target, "alice", ["one.test", "two.test"]);
  await addUser(target, "bob", ["three.test"]);
  await addUser(target, "carol", ["four.test"]);
  await seedQueue(target, [
    // One message for both of alice's domains: counted once for her.
    { to: ["a@one.test", "b@two.test"], at: T0 - 3 * HOUR, body: BODY },
    { to: ["c@two.test"], at: T0 - HOUR, body: BODY },
    // Failed for alice: not waiting.
    { to: ["d@one.test"], at: T0 - 5 * HOUR, body: BODY, failed: ["d@one.test"] },
    { to: ["e@three.test"], at: T0 - 2 * HOUR, body: BODY + "more\r\n" },
  ]);
  await recordCollection(target, "alice", T0 - 5 * 60_000);
}

/** alice's figures after setUp, as `user list --json` and `user show --json` give them. */
const ALICE = {
  name: "alice",
  domains: ["one.test", "two.test"],
  "waiting_messages": 2,
  "waiting_bytes": 40,
  "oldest_waiting_at": new Date(T0 - 3 * HOUR).toISOString(),
  "last_collection_at": new Date(T0 - 5 * 60_000).toISOString(),
  certificates: [],
};

/** `user list|show|test` cases: the same assertions on SQLite and PostgreSQL (#14). */
async function cases(t: Deno.TestContext, open: TargetOpener): Promise<void> {
  await t.step(
    "user list --json adds waiting messages, bytes, oldest waiting and last collection (#11)",
    async () => {
      await open(async (target) => {
        await setUp(target);
        const r = await run(target, ["list", "--json"]);
        assert.equal(r.code, 0, r.err);
        assert.deepEqual(JSON.parse(r.out), [
          ALICE,
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
    },
  );

  await t.step(
    "user list prints a table with ages, and says so when there are no users",
    async () => {
      await open(async (target) => {
        const empty = await run(target, ["list"]);
        assert.equal(empty.code, 0);
        assert.match(empty.out, /^No users/);
        await setUp(target);
        const r = await run(target, ["list"]);
        assert.equal(r.code, 0, r.err);
        const rows = r.out.trimEnd().split("\n").map((l) => l.split(/\s{2,}/));
        assert.deepEqual(rows, [
          ["NAME", "DOMAINS", "WAITING", "BYTES", "OLDEST", "LAST COLLECTION"],
          ["alice", "one.test,two.test", "2", "40", "3h", "5m ago"],
          ["bob", "three.test", "1", "26", "2h", "never"],
          ["carol", "four.test", "0", "0", "-", "never"],
        ]);
      });
    },
  );

  await t.step("user show NAME --json gives one user with its figures per domain", async () => {
    await open(async (target) => {
      await setUp(target);
      const r = await run(target, ["show", "alice", "--json"]);
      assert.equal(r.code, 0, r.err);
      assert.deepEqual(JSON.parse(r.out), {
        ...ALICE,
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
      const text = await run(target, ["show", "bob"]);
      assert.equal(text.code, 0, text.err);
      assert.match(text.out, /^User: +bob$/m);
      assert.match(text.out, /^Waiting: +1 message, 26 bytes$/m);
      assert.match(text.out, /^Oldest waiting: +2026-01-10T10:00:00Z \(2h ago\)$/m);
      assert.match(text.out, /^Last collection: +never$/m);
      assert.match(text.out, /^ {2}three\.test {2}1 message, 26 bytes, oldest 2h old$/m);
    });
  });

  await t.step(
    "user figures count the mail waiting for the user's ATRN, not route mx mail to its domains",
    async () => {
      await open(async (target) => {
        await addUser(target, "dave", ["five.test"]);
        await seedQueue(target, [
          // The outbound queue (route mx) goes to five.test's MX hosts, not to dave.
          { to: ["x@five.test"], at: T0 - 4 * HOUR, body: BODY, mx: ["x@five.test"] },
          { to: ["y@five.test", "z@five.test"], at: T0 - HOUR, body: BODY, mx: ["z@five.test"] },
        ]);
        const r = await run(target, ["show", "dave", "--json"]);
        assert.equal(r.code, 0, r.err);
        const shown = JSON.parse(r.out);
        assert.deepEqual(
          [shown.waiting_messages, shown.waiting_bytes, shown.oldest_waiting_at],
          [1, 20, new Date(T0 - HOUR).toISOString()],
        );
      });
    },
  );

  await t.step("user show of an unknown user exits 1; bad arguments exit 2", async () => {
    await open(async (target) => {
      const r = await run(target, ["show", "nobody"]);
      assert.equal(r.code, 1);
      assert.equal(r.err, 'error: User "nobody" does not exist\n');
      assert.equal((await run(target, ["show"])).code, 2);
      assert.equal((await run(target, ["show", "a", "b"])).code, 2);
      assert.equal((await run(target, ["show", "a", "--yaml"])).code, 2);
    });
  });

  await t.step(
    "user test exits 0 when every stored verifier accepts the password, 3 otherwise (#11)",
    async () => {
      await open(async (target) => {
        await addUser(target, "alice", ["one.test"], "correct horse");
        const good = await run(target, ["test", "alice", "--password-stdin"], ["correct horse"]);
        assert.equal(good.code, 0, good.err);
        assert.equal(
          good.out,
          'Password of user "alice" matches (SCRAM-SHA-256, CRAM-MD5, PLAIN/LOGIN)\n',
        );
        const bad = await run(target, ["test", "alice", "--password-stdin"], ["correct hors"]);
        assert.equal(bad.code, 3);
        assert.equal(bad.err, 'error: Password of user "alice" does not match\n');
        assert.equal(bad.out, "");
        const unknown = await run(target, ["test", "bob", "--password-stdin"], ["x"]);
        assert.equal(unknown.code, 3);
        assert.equal(unknown.err, 'error: User "bob" does not exist\n');
        // The password never appears in any output.
        assert.ok(![good, bad].some((r) => (r.out + r.err).includes("correct hors")));
      });
    },
  );
}

await onBothBackends("user list, show and test with their figures", cases);

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
