/**
 * What the `user` command says and does about the mail of the domains it moves (README "Users"):
 * `user domains --add` holds the mail waiting for the MX hosts of the user's domains for its
 * ATRN and says how many recipients it moved; `--remove` leaves the mail held for the domain
 * and says how much stays queued; nothing is said when there is nothing. Both backends.
 */
import { deepStrictEqual as assertEquals, equal } from "node:assert/strict";
import { openToolQueue } from "../../src/cli/_backend.ts";
import { userCommand, type UserCommandOptions } from "../../src/cli/user.ts";
import { queueMessage, rcpt } from "../_helpers/queue_fixtures.ts";
import { onBothBackends } from "./_backends.ts";
import { type QueueTarget, recordingIo } from "./_io.ts";

const FAST: UserCommandOptions = {
  storeOptions: { scramIterations: 4096, scryptParams: { logN: 10, r: 8, p: 1 } },
};

async function user(target: QueueTarget, argv: string[], stdin: string[] = []) {
  const io = recordingIo(target, { answers: stdin });
  const code = await userCommand(argv, io, FAST);
  return { code, out: io.out, err: io.err };
}

await onBothBackends("user domains: the mail of the domains changing hands", async (t, open) => {
  await t.step(
    "--add holds, --remove tells what stays, silence when nothing",
    () =>
      open(async (target) => {
        const users: [string, string][] = [["alice", "example.org"], ["bob", "bob.test"]];
        for (const [name, domain] of users) {
          const r = await user(target, ["add", name, "--domain", domain, "--password-stdin"], [
            "pw",
          ]);
          equal(r.code, 0, r.err);
        }
        const store = await openToolQueue(target.dataDir, target.storage);
        let id: string;
        try {
          // Submitted by alice while nobody owned newco.test: two recipients there, by MX.
          id = await queueMessage(store, {
            from: "alice@example.org",
            to: [rcpt("a@newco.test", { route: "mx" }), rcpt("b@newco.test", { route: "mx" })],
          });
        } finally {
          await store.close();
        }
        const added = await user(target, ["domains", "bob", "--add", "newco.test"]);
        equal(added.code, 0, added.err);
        assertEquals(added.out.split("\n").slice(1), [
          "2 recipients waiting for their domains' MX hosts held for ATRN instead",
          "",
        ]);
        const removed = await user(target, ["domains", "bob", "--remove", "newco.test"]);
        equal(removed.code, 0, removed.err);
        assertEquals(removed.out.split("\n").slice(1), [
          "1 message for newco.test stays queued until it expires or a new owner collects it",
          "",
        ]);
        // Nothing to move or to keep: only the change is reported.
        const again = await user(target, ["domains", "bob", "--add", "empty.test"]);
        assertEquals([again.code, again.out], [
          0,
          'User "bob" now owns domains bob.test, empty.test\n',
        ]);
        const gone = await user(target, ["domains", "bob", "--remove", "empty.test"]);
        assertEquals([gone.code, gone.out], [0, 'User "bob" now owns domains bob.test\n']);
        const after = await openToolQueue(target.dataDir, target.storage);
        try {
          const routes = (await after.get(id))?.recipients.map((r) => [r.address, r.route]);
          assertEquals(routes, [["a@newco.test", "atrn"], ["b@newco.test", "atrn"]]);
        } finally {
          await after.close();
        }
      }),
  );
});
