/**
 * A password must work with every mechanism the relay offers. AUTH PLAIN and LOGIN take a
 * password of up to 255 octets (RFC 4616 §2: what every server must take; ours refuses more as
 * malformed), so `user add` and `user passwd` refuse a longer one, in octets of UTF-8, with a
 * message that says why, instead of storing a password that PLAIN and LOGIN then refuse as
 * `501 5.5.2 Malformed authentication response` while `user test` says it matches. A password
 * of exactly 255 octets is stored and PLAIN takes it.
 */
import { equal, match } from "node:assert/strict";
import { userCommand, type UserCommandOptions } from "../../src/cli/user.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { recordingIo } from "./_io.ts";
import { CredentialStore } from "../../src/auth/store.ts";
import { createSaslServer } from "../../src/auth/sasl_server.ts";

const FAST: UserCommandOptions = {
  storeOptions: { scramIterations: 4096, scryptParams: { logN: 10, r: 8, p: 1 } },
};

async function user(dir: string, argv: string[], stdin: string[]) {
  const io = recordingIo(dir, { answers: stdin });
  const code = await userCommand(argv, io, FAST);
  return { code, err: io.err };
}

const enc = new TextEncoder();

async function plainStep(dir: string, name: string, password: string) {
  const store = CredentialStore.open(dir);
  try {
    const server = createSaslServer("PLAIN", { store, hostname: "relay.test" });
    return await server.start(enc.encode(`\0${name}\0${password}`));
  } finally {
    store.close();
  }
}

Deno.test("user add / passwd refuse a password PLAIN and LOGIN could not carry (over 255 octets)", async (t) => {
  await withTempDataDir(async (dir) => {
    const longest = "p".repeat(255);
    await t.step("255 octets: stored, and AUTH PLAIN takes it", async () => {
      const r = await user(dir, ["add", "alice", "--domain", "example.org", "--password-stdin"], [
        longest,
      ]);
      equal(r.code, 0, r.err);
      equal((await plainStep(dir, "alice", longest)).kind, "success");
    });
    for (
      const [what, password, name] of [
        ["256 ASCII octets", "p".repeat(256), "bob"],
        ["128 two-octet characters (256 octets)", "\u00e9".repeat(128), "carol"],
      ] as const
    ) {
      await t.step(`${what}: refused, the old password stays`, async () => {
        const add = await user(dir, ["add", name, "--domain", `${name}.test`, "--password-stdin"], [
          password,
        ]);
        equal(add.code, 1, add.err);
        match(add.err, /^error: Cannot use this password: .*255 octets/);
        const passwd = await user(dir, ["passwd", "alice", "--password-stdin"], [password]);
        equal(passwd.code, 1, passwd.err);
        match(passwd.err, /^error: Cannot use this password: .*255 octets/);
        equal((await plainStep(dir, "alice", longest)).kind, "success");
      });
    }
  });
});
