import { deepStrictEqual as assertEquals, equal, match, ok } from "node:assert/strict";
import { userCommand, type UserCommandOptions } from "../../src/cli/user.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { recordingIo } from "./_io.ts";
import { CredentialStore } from "../../src/auth/store.ts";
import { verifyPassword } from "../../src/auth/password_hash.ts";

const FAST: UserCommandOptions = {
  storeOptions: { scramIterations: 4096, scryptParams: { logN: 10, r: 8, p: 1 } },
};

async function user(dir: string, argv: string[], stdin: string[] = [], opts = FAST) {
  const io = recordingIo(dir, { answers: stdin });
  const code = await userCommand(argv, io, opts);
  return { code, out: io.out, err: io.err };
}

/** The contract's fields of `user list --json` (it may add others). */
function namesAndDomains(json: string): { name: string; domains: string[] }[] {
  return JSON.parse(json).map((u: { name: string; domains: string[] }) => ({
    name: u.name,
    domains: u.domains,
  }));
}

Deno.test("user add, list --json, domains, passwd and remove work on a temp data dir", async () => {
  await withTempDataDir(async (dir) => {
    const add = await user(dir, [
      "add",
      "alice",
      "--domain",
      "Example.ORG",
      "--domain",
      "bücher.example",
      "--password-stdin",
    ], ["s3cret", "ignored second line"]);
    equal(add.code, 0, add.err);
    match(add.out, /Added user "alice"/);
    ok(!add.out.includes("s3cret") && !add.err.includes("s3cret"));

    equal(
      (await user(dir, ["add", "bob", "--domain", "example.net", "--password-stdin"], ["pw"]))
        .code,
      0,
    );
    const list = await user(dir, ["list", "--json"]);
    equal(list.code, 0);
    assertEquals(namesAndDomains(list.out), [
      { name: "alice", domains: ["example.org", "xn--bcher-kva.example"] },
      { name: "bob", domains: ["example.net"] },
    ]);
    const text = await user(dir, ["list"]);
    match(text.out, /^alice {2}example\.org,xn--bcher-kva\.example {2}\s*0\s+0 {2}- {7}never$/m);
    match(text.out, /^bob {4}example\.net\s+0\s+0 {2}- {7}never$/m);

    equal(
      (await user(dir, ["domains", "alice", "--add", "example.com", "--remove", "example.org"]))
        .code,
      0,
    );
    equal((await user(dir, ["domains", "alice"])).out, "example.com\nxn--bcher-kva.example\n");

    equal((await user(dir, ["passwd", "alice", "--password-stdin"], ["n3w"])).code, 0);
    const store = CredentialStore.open(dir);
    try {
      const hash = store.getVerifiers("alice")?.passwordHash ?? "";
      equal(await verifyPassword("n3w", hash), true);
    } finally {
      store.close();
    }

    equal((await user(dir, ["remove", "bob"])).code, 0);
    assertEquals(namesAndDomains((await user(dir, ["list", "--json"])).out), [
      { name: "alice", domains: ["example.com", "xn--bcher-kva.example"] },
    ]);
  });
});

Deno.test("user list --json prints [] when there are no users", async () => {
  await withTempDataDir(async (dir) => {
    const r = await user(dir, ["list", "--json"]);
    equal(r.code, 0);
    equal(r.out, "[]\n");
  });
});

Deno.test("user add exits 1 when the domain already belongs to another user", async () => {
  await withTempDataDir(async (dir) => {
    await user(dir, ["add", "bob", "--domain", "example.org", "--password-stdin"], ["pw"]);
    const r = await user(dir, ["add", "alice", "--domain", "example.org", "--password-stdin"], [
      "pw",
    ]);
    equal(r.code, 1);
    equal(r.err, 'error: Domain "example.org" already belongs to user "bob"\n');
    const dup = await user(dir, ["add", "bob", "--domain", "example.com", "--password-stdin"], [
      "pw",
    ]);
    equal(dup.code, 1);
    equal(dup.err, 'error: User "bob" already exists\n');
  });
});

Deno.test("user commands exit 2 on usage errors and name the flag", async (t) => {
  await withTempDataDir(async (dir) => {
    const rows: { argv: string[]; stdin?: string[]; want: RegExp }[] = [
      { argv: [], want: /Missing subcommand/ },
      { argv: ["frobnicate"], want: /Unknown subcommand "frobnicate"/ },
      { argv: ["add", "alice", "--password-stdin"], stdin: ["pw"], want: /Missing --domain/ },
      { argv: ["add", "--domain", "example.org"], want: /Missing NAME/ },
      { argv: ["add", "alice", "--domain", "localhost"], want: /--domain: "localhost"/ },
      { argv: ["add", "bad name", "--domain", "example.org"], want: /Invalid user name/ },
      { argv: ["add", "alice", "--domain", "example.org", "--bogus"], want: /--bogus/ },
      {
        argv: ["add", "alice", "--domain", "example.org", "--password-stdin"],
        stdin: [""],
        want: /Empty password/,
      },
      {
        argv: ["add", "alice", "--domain", "example.org", "--password-stdin"],
        stdin: [],
        want: /Empty password/,
      },
      { argv: ["add", "alice", "--domain", "example.org"], want: /--password-stdin/ },
      { argv: ["domains", "alice", "--add", "a..b"], want: /--add: "a\.\.b"/ },
      { argv: ["list", "extra"], want: /Unexpected argument "extra"/ },
      { argv: ["remove"], want: /Missing NAME/ },
    ];
    for (const row of rows) {
      await t.step(row.argv.join(" ") || "(nothing)", async () => {
        const r = await user(dir, row.argv, row.stdin ?? []);
        equal(r.code, 2, r.err);
        match(r.err, row.want);
      });
    }
  });
});

Deno.test("user commands exit 1 for an unknown user", async (t) => {
  await withTempDataDir(async (dir) => {
    for (const argv of [["remove", "ghost"], ["domains", "ghost"], ["passwd", "ghost"]]) {
      await t.step(argv.join(" "), async () => {
        const r = await user(
          dir,
          [...argv, ...(argv[0] === "passwd" ? ["--password-stdin"] : [])],
          [
            "pw",
          ],
        );
        equal(r.code, 1);
        equal(r.err, 'error: User "ghost" does not exist\n');
      });
    }
  });
});

Deno.test("user add prompts twice on a TTY and refuses a mismatch or an empty password", async () => {
  await withTempDataDir(async (dir) => {
    const answers = ["pw1", "pw1"];
    const ok1 = await user(dir, ["add", "alice", "--domain", "example.org"], [], {
      ...FAST,
      promptPassword: () => Promise.resolve(answers.shift() ?? null),
    });
    equal(ok1.code, 0, ok1.err);
    const mismatch = ["a", "b"];
    const r = await user(dir, ["passwd", "alice"], [], {
      ...FAST,
      promptPassword: () => Promise.resolve(mismatch.shift() ?? null),
    });
    equal(r.code, 2);
    match(r.err, /Passwords do not match/);
    const empty = await user(dir, ["passwd", "alice"], [], {
      ...FAST,
      promptPassword: () => Promise.resolve(""),
    });
    equal(empty.code, 2);
    match(empty.err, /Empty password/);
  });
});

Deno.test("user add exits 1 when the data directory cannot be created", async () => {
  await withTempDataDir(async (dir) => {
    const file = `${dir}/not-a-dir`;
    await Deno.writeTextFile(file, "x");
    const r = await user(`${file}/data`, [
      "add",
      "alice",
      "--domain",
      "example.org",
      "--password-stdin",
    ], ["pw"]);
    equal(r.code, 1);
    match(r.err, /Cannot open/);
  });
});
