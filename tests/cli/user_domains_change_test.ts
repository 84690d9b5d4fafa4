/**
 * `user domains NAME --add D --remove E` is one change: when a part of it is refused (a domain
 * to remove that the user does not own, one to add that another user owns) the command exits 1
 * and the user owns exactly what it owned before. On SQLite the `--add` was kept when the
 * `--remove` was refused after it, behind an `error:` line saying it failed.
 */
import { deepStrictEqual as assertEquals, equal, match } from "node:assert/strict";
import { userCommand, type UserCommandOptions } from "../../src/cli/user.ts";
import { onBothBackends } from "./_backends.ts";
import { recordingIo, type Where } from "./_io.ts";

const FAST: UserCommandOptions = {
  storeOptions: { scramIterations: 4096, scryptParams: { logN: 10, r: 8, p: 1 } },
};

async function user(where: Where, argv: string[], stdin: string[] = []) {
  const io = recordingIo(where, { answers: stdin });
  const code = await userCommand(argv, io, FAST);
  return { code, out: io.out, err: io.err };
}

await onBothBackends("user domains --add and --remove: all or nothing", async (t, open) => {
  const refused: { why: string; argv: string[]; want: RegExp }[] = [
    {
      why: "a domain to remove that the user does not own",
      argv: ["--add", "new.example", "--remove", "other.example"],
      want: /Domain "other\.example" does not belong to user "alice"/,
    },
    {
      why: "a domain to remove that nobody owns",
      argv: ["--add", "new.example", "--remove", "nobody.example"],
      want: /Domain "nobody\.example" does not belong to user "alice"/,
    },
    {
      why: "a domain to add that another user owns",
      argv: ["--remove", "example.org", "--add", "other.example"],
      want: /Domain "other\.example" already belongs to user "bob"/,
    },
  ];
  for (const c of refused) {
    await t.step(c.why, () =>
      open(async (where) => {
        const pw = ["--password-stdin"];
        equal(
          (await user(where, ["add", "alice", "--domain", "example.org", ...pw], ["a"])).code,
          0,
        );
        equal(
          (await user(where, ["add", "bob", "--domain", "other.example", ...pw], ["b"])).code,
          0,
        );
        const r = await user(where, ["domains", "alice", ...c.argv]);
        equal(r.code, 1, r.err);
        match(r.err, c.want);
        equal(r.out, "");
        assertEquals((await user(where, ["domains", "alice"])).out, "example.org\n");
        assertEquals((await user(where, ["domains", "bob"])).out, "other.example\n");
      }));
  }
  await t.step("both parts allowed: both made", () =>
    open(async (where) => {
      equal(
        (await user(where, ["add", "alice", "--domain", "example.org", "--password-stdin"], [
          "a",
        ])).code,
        0,
      );
      const r = await user(where, [
        "domains",
        "alice",
        "--add",
        "new.example",
        "--remove",
        "example.org",
      ]);
      equal(r.code, 0, r.err);
      assertEquals((await user(where, ["domains", "alice"])).out, "new.example\n");
    }));
});
