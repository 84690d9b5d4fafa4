import assert from "node:assert/strict";
import { COMMAND_HELP, MAIN_HELP } from "../../src/cli/_help.ts";
import { QUEUE_SUBCOMMANDS } from "../../src/cli/_queue_args.ts";
import { USER_USAGE } from "../../src/cli/_user_args.ts";

const README = await Deno.readTextFile(new URL("../../README.md", import.meta.url));

Deno.test("every queue subcommand is in the main help, queue --help and the README reference", () => {
  for (const sub of QUEUE_SUBCOMMANDS) {
    assert.match(MAIN_HELP, new RegExp(`queue .*\\b${sub}\\b`), sub);
    assert.match(COMMAND_HELP.queue, new RegExp(`^ {2}queue ${sub}\\b`, "m"), sub);
    assert.match(README, new RegExp(`^odmr-relay queue ${sub}\\b`, "m"), sub);
  }
});

Deno.test("every user subcommand of the usage line is in the main help, user --help and the README reference", () => {
  const subs = [...USER_USAGE.matchAll(/\buser (\w+)/g)].map((m) => m[1]);
  for (const sub of ["add", "passwd", "domains", "list", "show", "test", "remove"]) {
    assert.ok(subs.includes(sub), sub);
  }
  for (const sub of subs) {
    assert.match(MAIN_HELP, new RegExp(`user .*\\b${sub}\\b`), sub);
    assert.match(COMMAND_HELP.user, new RegExp(`^ {2}user ${sub}\\b`, "m"), sub);
    assert.match(README, new RegExp(`^odmr-relay user ${sub}\\b`, "m"), sub);
  }
});

Deno.test("queue migrate is named with the other queue subcommands (main help, missing subcommand)", async () => {
  assert.match(MAIN_HELP, /queue .*\bmigrate\b/);
  const { queueCommand } = await import("../../src/cli/queue.ts");
  let err = "";
  const io = {
    dataDir: "/nonexistent",
    stdout: () => {},
    stderr: (text: string) => err += text,
  } as unknown as Parameters<typeof queueCommand>[1];
  assert.equal(await queueCommand([], io), 2);
  assert.match(err, /^error: Missing subcommand: expected .*\bmigrate\b/);
});
