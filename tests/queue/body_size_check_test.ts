/**
 * A stored body is sent only whole (#13 follow-up of review rev13c F2): one that is not its
 * message's `size` in bytes, whether kept in the message's row (schema step 7) or in a segment
 * file that ends before it or whose name's length (schema step 10) is not the row's `size` (a
 * `size` lowered, or raised into the next body of the segment), is an error before its first
 * byte. The drain then sends nothing of
 * it, logs `message_unreadable` with the message's id, and keeps the recipient queued with
 * 451 (tried again, never lost, never delivered damaged). Each store is damaged with direct SQL
 * or by cutting its file, as a disk or an operator could.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { BODY_DIR } from "../../src/queue/_body_files.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import { assertDrainRefuses, bytesBeforeFailure, drainOnce } from "../_helpers/drain_once.ts";
import { bodyNameOf, queueMessage, withStore } from "../_helpers/queue_fixtures.ts";

const DOMAIN = "customer.test";

function bytes(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 7 + seed) % 26 + 0x61);
}

/** A short body (kept in its row) and a long one (in a segment file), CRLF-ended lines. */
function message(n: number): Uint8Array {
  const line = new Uint8Array([...bytes(70, n), 0x0d, 0x0a]);
  const out = new Uint8Array(Math.ceil(n / line.length) * line.length);
  for (let at = 0; at < out.length; at += line.length) out.set(line, at);
  return out;
}
const SHORT = message(2_000);
const LONG = message(200_000);

function onRaw(dataDir: string, fn: (db: DatabaseSync) => void): void {
  const raw = new DatabaseSync(`${dataDir}/odmr.db`);
  try {
    fn(raw);
  } finally {
    raw.close();
  }
}

Deno.test("whole bodies, in a row or in a segment file, drain as they were received (#13)", async () => {
  await withStore(async (store) => {
    const short = await queueMessage(store, { to: [`a@${DOMAIN}`], body: SHORT });
    const long = await queueMessage(store, { to: [`b@${DOMAIN}`], body: LONG });
    assert.deepEqual(await collectBytes(store.readBody(short)), SHORT);
    assert.deepEqual(await collectBytes(store.readBody(long)), LONG);
    const drained = await drainOnce(store, DOMAIN);
    assert.equal(drained.summary.delivered, 2);
    assert.deepEqual(drained.bodies, [SHORT, LONG]);
    assert.deepEqual(await store.list(), []);
  });
});

for (
  const [damage, sql, bound] of [
    ["its row's body is a byte short", "UPDATE messages SET body = ? WHERE id = ?", -1],
    ["its row's body is a byte longer", "UPDATE messages SET body = ? WHERE id = ?", 1],
    ["its size says a byte more", "UPDATE messages SET size = size + 1 WHERE id = ?", 0],
    ["its size says a byte less", "UPDATE messages SET size = size - 1 WHERE id = ?", 0],
  ] as const
) {
  Deno.test(`a body kept in its row is not sent when ${damage} (#13)`, async () => {
    await withStore(async (store, dataDir) => {
      const id = await queueMessage(store, { to: [`a@${DOMAIN}`], body: SHORT });
      onRaw(dataDir, (raw) => {
        const row = raw.prepare("SELECT body FROM messages WHERE id = ?").get(id);
        assert.ok(row?.body instanceof Uint8Array, "kept in its row");
        if (bound === 0) return void raw.prepare(sql).run(id);
        const body = bound < 0 ? SHORT.subarray(0, -1) : new Uint8Array([...SHORT, 0x61]);
        raw.prepare(sql).run(body, id);
      });
      assert.equal(await bytesBeforeFailure(store, id), 0);
      await assertDrainRefuses(store, id, DOMAIN);
    });
  });
}

Deno.test("a body in a segment file is not sent, not even in part, when its file ends before it (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const id = await queueMessage(store, { to: [`a@${DOMAIN}`], body: LONG });
    const name = String(bodyNameOf(dataDir, id));
    const [file, place] = name.split("@");
    assert.equal(place, `0+${LONG.length}`);
    await Deno.truncate(`${dataDir}/${BODY_DIR}/${file}`, LONG.length - 1);
    // Nothing at all: a reader that stops early (a report quoting the start) gets no part.
    assert.equal(await bytesBeforeFailure(store, id), 0);
    await assertDrainRefuses(store, id, DOMAIN);
  });
});

Deno.test("a message deleted before its body is read is an error, never an empty body (#13)", async () => {
  await withStore(async (store) => {
    for (const body of [SHORT, LONG]) {
      const id = await queueMessage(store, { to: [`a@${DOMAIN}`], body });
      await store.delete([id]);
      assert.equal(await bytesBeforeFailure(store, id), 0);
    }
  });
});

for (
  const [damage, change] of [
    ["its size says a byte less", -1],
    // Into the next body's bytes, not past them: the segment holds what the size says.
    ["its size is raised into the next body in its segment", 100_000],
  ] as const
) {
  Deno.test(`a body in a segment file is not sent when ${damage} (#13)`, async () => {
    await withStore(async (store, dataDir) => {
      // Two bodies of one domain, one after the other in one segment; the second's bytes stay
      // there after its message is deleted (the first's body keeps the segment).
      const id = await queueMessage(store, { to: [`a@${DOMAIN}`], body: LONG });
      const next = await queueMessage(store, { to: [`b@${DOMAIN}`], body: message(150_000) });
      const [file] = String(bodyNameOf(dataDir, id)).split("@");
      assert.equal(String(bodyNameOf(dataDir, next)).split("@")[0], file, "one segment");
      assert.equal(await store.delete([next]), 1);
      onRaw(dataDir, (raw) => {
        raw.prepare("UPDATE messages SET size = size + ? WHERE id = ?").run(change, id);
      });
      // The file holds what the row now says: only the name's length tells.
      assert.equal(await bytesBeforeFailure(store, id), 0);
      await assertDrainRefuses(store, id, DOMAIN);
    });
  });
}

Deno.test("a body in a segment named as before step 10 (no length) is still read whole (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const id = await queueMessage(store, { to: [`a@${DOMAIN}`], body: LONG });
    const name = String(bodyNameOf(dataDir, id));
    onRaw(dataDir, (raw) => {
      raw.prepare("UPDATE messages SET body_file = ? WHERE id = ?").run(
        name.slice(0, name.indexOf("+")),
        id,
      );
    });
    assert.match(String(bodyNameOf(dataDir, id)), /@0$/);
    assert.deepEqual(await collectBytes(store.readBody(id)), LONG);
    const drained = await drainOnce(store, DOMAIN);
    assert.deepEqual(drained.bodies, [LONG]);
  });
});
