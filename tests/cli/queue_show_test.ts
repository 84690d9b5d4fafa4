import assert from "node:assert/strict";
import { queueCommand } from "../../src/cli/queue.ts";
import { concatBytes } from "../../src/wire/bytes.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { onBothBackends, type TargetOpener } from "./_backends.ts";
import { runMain, seedQueue } from "./_queue_seed.ts";
import { recordingIo } from "./_io.ts";

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);

/** Every byte value, CR and LF alone, NUL: what a text decoder would damage. */
function binaryBody(size: number): Uint8Array {
  const body = new Uint8Array(size);
  for (let i = 0; i < size; i++) body[i] = (i * 131 + (i >> 8)) & 0xff;
  return body;
}

/** `queue show --json|--body` cases: the same assertions on SQLite and PostgreSQL (#14). */
async function cases(t: Deno.TestContext, open: TargetOpener): Promise<void> {
  await t.step(
    "queue show --json prints the list shape plus attempts and last_reply per recipient",
    async () => {
      await open(async (target) => {
        const [id] = await seedQueue(target, [
          { from: "", to: ["a@one.test", "b@one.test"], at: T0, failed: ["a@one.test"] },
        ], { failReply: "550 5.1.1 <a@one.test>: no such user" });
        assert.ok(id);
        const io = recordingIo(target);
        assert.equal(await queueCommand(["show", id, "--json"], io), 0, io.err);
        const size = new TextEncoder().encode(
          "Subject: seeded\r\nFrom: a@example.net\r\n\r\nbody\r\n",
        ).length;
        assert.deepEqual(JSON.parse(io.out), {
          id,
          received_at: "2026-01-10T12:00:00.000Z",
          from: "",
          size,
          params: {},
          recipients: [
            {
              address: "a@one.test",
              domain: "one.test",
              status: "failed",
              route: "atrn",
              attempts: 1,
              last_reply: "550 5.1.1 <a@one.test>: no such user",
            },
            {
              address: "b@one.test",
              domain: "one.test",
              status: "queued",
              route: "atrn",
              attempts: 0,
              last_reply: null,
            },
          ],
        });
      });
    },
  );

  await t.step(
    "queue show --body writes the stored message byte for byte, a chunk at a time",
    async () => {
      await open(async (target) => {
        // Longer than two 64 KiB chunks: in chunk rows (PostgreSQL) or a file (SQLite, #13),
        // read back 64 KiB at a time.
        const body = binaryBody(150_000);
        const [id] = await seedQueue(target, [{ to: ["a@one.test"], at: T0, body }]);
        assert.ok(id);
        const io = recordingIo(target, { acceptsBinary: true });
        assert.equal(await queueCommand(["show", id, "--body"], io), 0, io.err);
        assert.equal(io.out, "");
        assert.deepEqual(io.bytes.map((b) => b.length), [65536, 65536, 18928]);
        assert.deepEqual(concatBytes(io.bytes), body);
      });
    },
  );

  await t.step(
    "queue show and list --json give each recipient its route and an mx one its next attempt",
    async () => {
      await open(async (target) => {
        const [id] = await seedQueue(target, [
          { to: ["a@one.test", "b@far.test"], mx: ["b@far.test"], at: T0 },
        ]);
        assert.ok(id);
        const show = recordingIo(target);
        assert.equal(await queueCommand(["show", id, "--json"], show), 0, show.err);
        const shown = JSON.parse(show.out).recipients;
        assert.deepEqual(shown.map((r: Record<string, unknown>) => [r.route, r.next_attempt]), [
          ["atrn", undefined],
          ["mx", "2026-01-10T12:00:00.000Z"],
        ]);
        const list = recordingIo(target);
        assert.equal(await queueCommand(["list", "--json"], list), 0, list.err);
        assert.deepEqual(JSON.parse(list.out)[0].recipients, [
          { address: "a@one.test", domain: "one.test", status: "queued", route: "atrn" },
          {
            address: "b@far.test",
            domain: "far.test",
            status: "queued",
            route: "mx",
            next_attempt: "2026-01-10T12:00:00.000Z",
          },
        ]);
        const text = recordingIo(target);
        assert.equal(await queueCommand(["show", id], text), 0, text.err);
        assert.match(
          text.out,
          /b@far\.test {2}queued {2}attempts=0 {2}route=mx {2}next attempt: 2026-01-10T12:00:00\.000Z/,
        );
      });
    },
  );

  await t.step(
    "queue show --body of an unknown id exits 1 and writes nothing to stdout",
    async () => {
      await open(async (target) => {
        const io = recordingIo(target, { acceptsBinary: true });
        assert.equal(await queueCommand(["show", "0000000000NOSUCH", "--body"], io), 1);
        assert.deepEqual(io.bytes, []);
        assert.equal(io.err, 'error: Message "0000000000NOSUCH" not found\n');
      });
    },
  );
}

await onBothBackends("queue show --json and --body", cases);

Deno.test("main.ts queue show --body is byte-exact on the real stdout (200 KiB, several chunks)", async () => {
  await withTempDataDir(async (dir) => {
    const dataDir = `${dir}/data`;
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(config, `data_dir: ${JSON.stringify(dataDir)}\n`);
    const body = binaryBody(200 * 1024);
    const [id] = await seedQueue(dataDir, [{ to: ["a@one.test"], at: T0, body }]);
    assert.ok(id);
    const run = await runMain(["queue", "show", id, "--body", "--config", config]);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.length, body.length);
    assert.deepEqual(run.stdout, body);
  });
});

Deno.test("main.ts queue delete --domain with stdin not a terminal exits 2 and keeps the mail (#11)", async () => {
  await withTempDataDir(async (dir) => {
    const dataDir = `${dir}/data`;
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(config, `data_dir: ${JSON.stringify(dataDir)}\n`);
    const [id] = await seedQueue(dataDir, [{ to: ["a@one.test"], at: T0 }]);
    const run = await runMain(
      ["queue", "delete", "--domain", "one.test", "--config", config],
      "piped",
    );
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, /add --yes; nothing deleted/);
    const list = await runMain(["queue", "list", "--json", "--config", config]);
    assert.deepEqual(
      JSON.parse(new TextDecoder().decode(list.stdout)).map((m: { id: string }) => m.id),
      [id],
    );
  });
});

Deno.test("main.ts queue show --body exits 0 quietly when the reader stops early (| head)", async () => {
  await withTempDataDir(async (dir) => {
    const dataDir = `${dir}/data`;
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(config, `data_dir: ${JSON.stringify(dataDir)}\n`);
    const [id] = await seedQueue(dataDir, [{
      to: ["a@one.test"],
      at: T0,
      body: binaryBody(4 << 20),
    }]);
    assert.ok(id);
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "main.ts", "queue", "show", id, "--body", "--config", config],
      cwd: new URL("../../", import.meta.url),
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const reader = child.stdout.getReader();
    const first = await reader.read();
    assert.ok(!first.done && first.value.length > 0);
    await reader.cancel();
    const [status, stderr] = await Promise.all([
      child.status,
      new Response(child.stderr).text(),
    ]);
    assert.equal(status.code, 0, stderr);
    assert.equal(stderr, "");
  });
});
