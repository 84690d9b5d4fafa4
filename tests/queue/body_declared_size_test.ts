/**
 * A body its sender declared big (SMTP `SIZE=`, RFC 1870, at least BIG_BODY_BYTES) starts alone
 * in a new segment file (#13): it used to start after the other bodies of its key and be moved,
 * its first MiB copied, once it grew big, which left that MiB behind, unnamed, in the segment it
 * started in. A body declared smaller, or not declared, shares as before, and one that grows big
 * anyway is still moved. SIZE= is a sender's word only: once a body declared big ends short, the
 * next ones declared big share like others (moved if big after all) until one is big.
 */
import assert from "node:assert/strict";
import { BODY_DIR } from "../../src/queue/_body_files.ts";
import type { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import type { NewMessage } from "../../src/queue/types.ts";
import { collectBytes } from "../_helpers/bytes.ts";
import {
  bodyNameOf,
  patternBytes,
  queueMessage,
  rcpt,
  segmentOf,
  withStore,
} from "../_helpers/queue_fixtures.ts";
import { QueueSink } from "../../src/smtp/sinks/queue_sink.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { sessionInfo } from "../_helpers/session_info.ts";

const KB = 1024;
const MB = 1024 * 1024;

async function queueDeclared(
  store: SqliteQueueStore,
  body: Uint8Array,
  declaredSize: number | undefined,
): Promise<string> {
  const message: NewMessage = {
    mailFrom: "",
    params: {},
    recipients: [rcpt("b@one.test")],
    ...(declaredSize === undefined ? {} : { declaredSize }),
  };
  const writer = await store.begin(message);
  // As the receiver hands it over: a chunk of the connection's reads at a time.
  for (let at = 0; at < body.length; at += 64 * KB) {
    await writer.write(body.subarray(at, at + 64 * KB));
  }
  await writer.commit();
  return writer.id;
}

function fileBytes(dataDir: string, file: string): number {
  return Deno.statSync(`${dataDir}/${BODY_DIR}/${file}`).size;
}

for (
  const [declared, alone] of [
    [2 * MB, true],
    [MB, true],
    [MB - 1, false],
    [undefined, false],
  ] as const
) {
  Deno.test(`a 2 MiB body declared ${declared ?? "nothing"} ${alone ? "starts alone in a new segment" : "starts after the others and moves at 1 MiB"} (#13)`, async () => {
    await withStore(async (store, dataDir) => {
      const held = await queueMessage(store, {
        to: ["a@one.test"],
        body: patternBytes(64 * KB, 1),
      });
      const big = await queueDeclared(store, patternBytes(2 * MB, 2), declared);
      assert.notEqual(segmentOf(dataDir, big), segmentOf(dataDir, held));
      assert.equal(bodyNameOf(dataDir, big)?.split("@")[1], `0+${2 * MB}`);
      assert.deepEqual(await collectBytes(store.readBody(big)), patternBytes(2 * MB, 2));
      // Moved: the bytes copied out stay behind, unnamed, after `held` in its segment.
      const left = fileBytes(dataDir, segmentOf(dataDir, held)) - 64 * KB;
      if (alone) assert.equal(left, 0);
      else assert.ok(left >= MB - 64 * KB, `${left} bytes left behind`);
    });
  });
}

Deno.test("a body declared big that is short after all is alone in its segment, whole (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const held = await queueMessage(store, { to: ["a@one.test"], body: patternBytes(64 * KB, 1) });
    const small = await queueDeclared(store, patternBytes(100 * KB, 3), 5 * MB);
    assert.notEqual(segmentOf(dataDir, small), segmentOf(dataDir, held));
    assert.deepEqual(await collectBytes(store.readBody(small)), patternBytes(100 * KB, 3));
  });
});

Deno.test("MAIL FROM's SIZE= reaches the queue through the SMTP sink: the body starts alone (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const held = await queueMessage(store, { to: ["a@one.test"], body: patternBytes(64 * KB, 1) });
    const sink = new QueueSink({
      store,
      isLocalDomain: (d) => d === "one.test",
      log: NULL_LOGGER,
      maxRecipients: 10,
    });
    const session = sessionInfo({ sessionId: "s1", remoteAddress: "192.0.2.1" });
    const tx = await sink.begin({ address: "", params: {}, declaredSize: 2 * MB }, session);
    assert.ok("addRecipient" in tx);
    assert.equal((await tx.addRecipient(rcpt("b@one.test"))).code, 250);
    const body = patternBytes(2 * MB, 2);
    for (let at = 0; at < body.length; at += 64 * KB) {
      await tx.write(body.subarray(at, at + 64 * KB));
    }
    assert.equal((await tx.finish()).code, 250);
    assert.notEqual(segmentOf(dataDir, tx.id), segmentOf(dataDir, held));
    assert.equal(fileBytes(dataDir, segmentOf(dataDir, held)), 64 * KB, "nothing moved out of it");
    assert.deepEqual(await collectBytes(store.readBody(tx.id)), body);
  });
});

Deno.test("a sender declaring 1 MiB for 64 KiB bodies gets one segment for them, not one each (#13)", async () => {
  await withStore(async (store, dataDir) => {
    const small: string[] = [];
    for (let i = 0; i < 5; i++) {
      small.push(await queueDeclared(store, patternBytes(64 * KB, i), MB));
    }
    const first = segmentOf(dataDir, small[0] ?? "");
    assert.deepEqual(small.map((id) => segmentOf(dataDir, id)), small.map(() => first));
    // Big after all: it starts after them and moves at 1 MiB, like a body declaring nothing.
    const moved = await queueDeclared(store, patternBytes(2 * MB, 7), MB);
    assert.notEqual(segmentOf(dataDir, moved), first);
    assert.ok(fileBytes(dataDir, first) >= 5 * 64 * KB + MB - 64 * KB, "its first MiB left behind");
    // That one was big: the next body declared big starts alone again, nothing left behind.
    const before = fileBytes(dataDir, first);
    const alone = await queueDeclared(store, patternBytes(2 * MB, 8), 2 * MB);
    assert.equal(fileBytes(dataDir, first), before);
    assert.equal(bodyNameOf(dataDir, alone), `${segmentOf(dataDir, alone)}@0+${2 * MB}`);
    assert.equal(new Set([first, segmentOf(dataDir, moved), segmentOf(dataDir, alone)]).size, 3);
    for (const [i, id] of small.entries()) {
      assert.deepEqual(await collectBytes(store.readBody(id)), patternBytes(64 * KB, i));
    }
    assert.deepEqual(await collectBytes(store.readBody(moved)), patternBytes(2 * MB, 7));
    assert.deepEqual(await collectBytes(store.readBody(alone)), patternBytes(2 * MB, 8));
  });
});
