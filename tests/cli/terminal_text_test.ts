/**
 * (review wt18-revin) What `queue list` and `queue show` print comes from strangers: any sender
 * on the Internet chooses its SMTPUTF8 envelope (MAIL FROM, RCPT local parts), a customer its
 * replies. None of it may drive the operator's terminal: C1 controls (U+009B is CSI, U+009D
 * OSC: colours, a cleared screen, a window title, the clipboard) and bidirectional overrides
 * (U+202E shows an address backwards) are replaced as C0 controls are; letters are kept.
 */
import assert from "node:assert/strict";
import { queueCommand } from "../../src/cli/queue.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";
import { recordingIo } from "./_io.ts";

/** C0 (but TAB and LF), DEL, C1, and the invisible format and separator characters. */
// deno-lint-ignore no-control-regex -- control characters are what the test looks for
const DRIVES_TERMINAL = new RegExp(
  "[\\x00-\\x08\\x0b-\\x1f\\x7f-\\x9f\\u200b-\\u200f\\u2028-\\u202e\\u2066-\\u2069\\u{e0000}-\\u{e007f}]",
  "u",
);

const FROM = "\u009b2J\u009d0;pwned\u009c\u{e0041}\u202eevil\u00fc@sender.test";
const TO = "\u009b31mj\u00f6rg@one.test";

/** Queues one message from FROM to TO in the data directory's SQLite queue; its id. */
async function queueHostile(dataDir: string): Promise<string> {
  const store = new SqliteQueueStore(openDatabase(dataDir));
  try {
    return await queueMessage(store, {
      from: FROM,
      to: [TO],
      body: "Subject: hello\r\n\r\nbody\r\n",
    });
  } finally {
    await store.close();
  }
}

/** `queue ARGS`'s output, which must have exited 0 and hold nothing that drives a terminal. */
async function printedClean(dataDir: string, args: string[]): Promise<string> {
  const io = recordingIo(dataDir);
  assert.equal(await queueCommand(args, io), 0, io.err);
  const hit = DRIVES_TERMINAL.exec(io.out);
  assert.equal(
    hit,
    null,
    `queue ${args.join(" ")} printed U+${hit?.[0].codePointAt(0)?.toString(16)}`,
  );
  return io.out;
}

Deno.test("queue list and queue show print no C1 control or bidi override a sender chose (wt18-revin)", async () => {
  await withTempDataDir(async (dataDir) => {
    const id = await queueHostile(dataDir);
    for (const args of [["list"], ["show", id]]) {
      const out = await printedClean(dataDir, args);
      // The letters of an SMTPUTF8 address stay readable.
      assert.match(out, /evil\u00fc@sender\.test/);
      assert.match(out, /j\u00f6rg@one\.test/);
    }
  });
});

Deno.test("queue list --json and queue show --json escape those characters and still give them back (wt18-revin)", async () => {
  await withTempDataDir(async (dataDir) => {
    const id = await queueHostile(dataDir);
    for (const args of [["list", "--json"], ["show", id, "--json"]]) {
      const out = await printedClean(dataDir, args);
      // The same JSON values: a \uXXXX escape reads back as the character.
      const parsed = JSON.parse(out);
      const message = Array.isArray(parsed) ? parsed[0] : parsed;
      assert.equal(message.from, FROM);
      assert.equal(message.recipients[0].address, TO);
    }
  });
});
