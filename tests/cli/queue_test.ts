import assert from "node:assert/strict";
import { queueCommand } from "../../src/cli/queue.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { recordingIo } from "./_io.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";

const T0 = Date.UTC(2025, 0, 2, 3, 4, 5, 678);

/** Queues messages as `serve` would, then closes the store (the CLI opens its own). */
async function seed(
  dataDir: string,
  messages: readonly { from: string; to: readonly string[]; body: string }[],
): Promise<string[]> {
  let t = T0;
  const store = new SqliteQueueStore(openDatabase(dataDir), { now: () => t });
  try {
    const ids: string[] = [];
    for (const m of messages) {
      ids.push(await queueMessage(store, m));
      t += 1000;
    }
    return ids;
  } finally {
    await store.close();
  }
}

const BODY = "Subject: hello\r\nFrom: a@example.net\r\n\r\nsecret body text\r\n";

Deno.test("queue list --json --domain prints the contract shape with only that domain", async () => {
  await withTempDataDir(async (dataDir) => {
    const [m1] = await seed(dataDir, [
      { from: "", to: ["x@one.test", "y@two.test"], body: BODY },
      { from: "s@example.net", to: ["z@two.test"], body: BODY },
    ]);
    const io = recordingIo(dataDir);
    assert.equal(await queueCommand(["list", "--json", "--domain", "ONE.test"], io), 0);
    assert.deepEqual(JSON.parse(io.out), [
      {
        id: m1,
        received_at: "2025-01-02T03:04:05.678Z",
        from: "",
        size: new TextEncoder().encode(BODY).length,
        recipients: [
          { address: "x@one.test", domain: "one.test", status: "queued", route: "atrn" },
        ],
      },
    ]);
    assert.equal(io.err, "");
  });
});

Deno.test("queue list prints a table, and says so when the queue is empty", async () => {
  await withTempDataDir(async (dataDir) => {
    const empty = recordingIo(dataDir);
    assert.equal(await queueCommand(["list"], empty), 0);
    assert.equal(empty.out, "Queue is empty\n");
    const [m1] = await seed(dataDir, [{ from: "s@example.net", to: ["x@one.test"], body: BODY }]);
    const io = recordingIo(dataDir);
    assert.equal(await queueCommand(["list"], io), 0);
    const [head, row] = io.out.split("\n");
    assert.match(head ?? "", /^ID\s+RECEIVED\s+SIZE\s+FROM\s+RECIPIENTS$/);
    assert.ok(row?.startsWith(m1 ?? "?"));
    assert.match(row ?? "", /<s@example\.net>\s+x@one\.test \(queued\)$/);
  });
});

Deno.test("queue show prints envelope, recipients and only the header block", async () => {
  await withTempDataDir(async (dataDir) => {
    const [id] = await seed(dataDir, [{ from: "", to: ["x@one.test"], body: BODY }]);
    assert.ok(id);
    const io = recordingIo(dataDir);
    assert.equal(await queueCommand(["show", id], io), 0);
    assert.match(io.out, new RegExp(`^Message:\\s+${id}$`, "m"));
    assert.match(io.out, /^From:\s+<>$/m);
    assert.match(io.out, /^ {2}x@one\.test {2}queued {2}attempts=0$/m);
    assert.match(io.out, /^ {2}Subject: hello$/m);
    assert.match(io.out, /^ {2}From: a@example\.net$/m);
    assert.doesNotMatch(io.out, /secret body text/);
  });
});

Deno.test("queue show and delete of an unknown id exit 1 naming the id", async () => {
  await withTempDataDir(async (dataDir) => {
    for (const argv of [["show", "0000000000NOSUCH"], ["delete", "0000000000NOSUCH"]]) {
      const io = recordingIo(dataDir);
      assert.equal(await queueCommand(argv, io), 1);
      assert.equal(io.err, 'error: Message "0000000000NOSUCH" not found\n');
    }
  });
});

Deno.test("queue usage errors exit 2 and name the flag", async (t) => {
  for (
    const { argv, want } of [
      { argv: ["list", "--bogus"], want: "--bogus" },
      { argv: ["list", "--domain"], want: "--domain" },
      { argv: ["delete"], want: "--domain" },
      { argv: ["delete", "X", "--domain", "one.test"], want: "--domain" },
      { argv: ["show"], want: "ID" },
      { argv: ["frobnicate"], want: "frobnicate" },
    ]
  ) {
    await t.step(argv.join(" "), async () => {
      await withTempDataDir(async (dataDir) => {
        const io = recordingIo(dataDir);
        assert.equal(await queueCommand(argv, io), 2);
        assert.ok(io.err.includes(want), io.err);
      });
    });
  }
});

Deno.test("queue delete removes messages without asking when stdin is not a terminal", async () => {
  await withTempDataDir(async (dataDir) => {
    const [m1, m2] = await seed(dataDir, [
      { from: "", to: ["x@one.test"], body: BODY },
      { from: "", to: ["y@one.test"], body: BODY },
    ]);
    assert.ok(m1 && m2);
    const io = recordingIo(dataDir);
    assert.equal(await queueCommand(["delete", m1], io), 0);
    assert.equal(io.out, "Deleted 1 message\n");
    const list = recordingIo(dataDir);
    await queueCommand(["list", "--json"], list);
    assert.deepEqual(JSON.parse(list.out).map((m: { id: string }) => m.id), [m2]);
  });
});

Deno.test("queue delete asks on a terminal and deletes nothing unless told yes", async () => {
  await withTempDataDir(async (dataDir) => {
    const [id] = await seed(dataDir, [{ from: "", to: ["x@one.test"], body: BODY }]);
    assert.ok(id);
    const no = recordingIo(dataDir, { isTty: true, answers: [""] });
    assert.equal(await queueCommand(["delete", id], no), 1);
    assert.match(no.err, /Delete 1 message\? \[y\/N\] Aborted: nothing deleted/);
    const yes = recordingIo(dataDir, { isTty: true, answers: ["y"] });
    assert.equal(await queueCommand(["delete", "--domain", "one.test"], yes), 0);
    const forced = recordingIo(dataDir, { isTty: true });
    assert.equal(await queueCommand(["delete", "--yes", "--domain", "one.test"], forced), 0);
    assert.equal(forced.err, "");
    const list = recordingIo(dataDir);
    await queueCommand(["list", "--json"], list);
    assert.deepEqual(JSON.parse(list.out), []);
  });
});

Deno.test("queue commands exit 1 naming the database when data_dir is unusable", async () => {
  await withTempDataDir(async (dir) => {
    const file = `${dir}/file`;
    await Deno.writeTextFile(file, "");
    const io = recordingIo(file);
    assert.equal(await queueCommand(["list"], io), 1);
    assert.match(io.err, /Cannot open queue database ".*\/file\/odmr\.db"/);
  });
});

Deno.test("queue delete --domain without a terminal and without --yes deletes nothing and exits 2 (#11)", async () => {
  await withTempDataDir(async (dataDir) => {
    const [id] = await seed(dataDir, [{ from: "", to: ["x@one.test"], body: BODY }]);
    const io = recordingIo(dataDir, { isTty: false, answers: ["y"] });
    assert.equal(await queueCommand(["delete", "--domain", "one.test"], io), 2);
    assert.match(io.err, /--yes/);
    assert.match(io.err, /nothing deleted/);
    assert.equal(io.out, "");
    const list = recordingIo(dataDir);
    await queueCommand(["list", "--json"], list);
    assert.deepEqual(JSON.parse(list.out).map((m: { id: string }) => m.id), [id]);
    const forced = recordingIo(dataDir, { isTty: false });
    assert.equal(await queueCommand(["delete", "--domain", "one.test", "--yes"], forced), 0);
    const after = recordingIo(dataDir);
    await queueCommand(["list", "--json"], after);
    assert.deepEqual(JSON.parse(after.out), []);
  });
});
