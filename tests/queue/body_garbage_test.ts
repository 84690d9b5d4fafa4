/**
 * Issue 13: a body read from the queue costs bounded memory whatever its size. The readers
 * hand out chunks of at most chunkBytes, and (with --expose-gc, as deno.json runs serve) a
 * young-generation GC every BODY_BYTES_PER_COLLECTION bytes frees the chunks already sent,
 * which V8 would otherwise keep until about 64 MB of them had piled up.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { BODY_BYTES_PER_COLLECTION, BodyGarbage } from "../../src/queue/_body_garbage.ts";
import { REPO_ROOT } from "../_helpers/server_process.ts";

Deno.test("(#13) BodyGarbage collects after every N bytes of body, not at N - 1", () => {
  const calls: string[] = [];
  const garbage = new BodyGarbage((o) => calls.push(o.type), 100);
  garbage.read(60);
  garbage.read(39); // 99
  deepEqual(calls, []);
  garbage.read(1); // 100
  deepEqual(calls, ["minor"]);
  garbage.read(99);
  deepEqual(calls, ["minor"]);
  garbage.read(100);
  deepEqual(calls, ["minor", "minor"]);
});

Deno.test("(#13) BodyGarbage without gc (no --expose-gc) does nothing", () => {
  const garbage = new BodyGarbage(undefined, 1);
  garbage.read(10); // no throw
  ok(BODY_BYTES_PER_COLLECTION >= 1024 * 1024);
});

// Runs in a process of its own: the test runner has no --expose-gc.
const PROBE = `
import { openDatabase } from "${REPO_ROOT}src/queue/db.ts";
import { SqliteQueueStore } from "${REPO_ROOT}src/queue/sqlite_store.ts";
const CHUNK = 64 * 1024;
const dir = Deno.args[0];
const store = new SqliteQueueStore(openDatabase(dir), { chunkBytes: CHUNK });
const w = await store.begin({
  mailFrom: "a@example.org",
  params: {},
  recipients: [{ address: "b@example.com", domain: "example.com" }],
});
const piece = new Uint8Array(CHUNK).fill(0x61);
for (let i = 0; i < Number(Deno.args[1]); i++) await w.write(piece);
await w.commit();
const base = Deno.memoryUsage().external;
let most = 0, bytes = 0, largest = 0;
for await (const chunk of store.readBody(w.id)) {
  bytes += chunk.length;
  largest = Math.max(largest, chunk.length);
  most = Math.max(most, Deno.memoryUsage().external - base);
}
await store.close();
console.log(JSON.stringify({ bytes, largest, most }));
`;

async function readBigBody(v8Flags: string, chunks: number) {
  const dir = await Deno.makeTempDir({ prefix: "odmr-body-gc-" });
  try {
    await Deno.writeTextFile(`${dir}/probe.ts`, PROBE);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", `--v8-flags=${v8Flags}`, `${dir}/probe.ts`, `${dir}/data`, `${chunks}`],
      cwd: REPO_ROOT,
      stdin: "null",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    equal(out.code, 0, new TextDecoder().decode(out.stderr));
    return JSON.parse(text) as { bytes: number; largest: number; most: number };
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("(#13) reading a 32 MiB body holds a bounded amount of it, not the whole body", async () => {
  const chunks = 512; // 32 MiB in 64 KiB chunks
  const got = await readBigBody("--max-semi-space-size=2,--expose-gc", chunks);
  equal(got.bytes, chunks * 64 * 1024);
  equal(got.largest, 64 * 1024); // read in chunks, never as a whole
  // One collection interval plus the page of chunks in hand; without the collections the
  // chunks pile up to the whole body (32 MiB).
  ok(got.most < 2 * BODY_BYTES_PER_COLLECTION + 2 * 1024 * 1024, `held ${got.most} bytes`);
});

Deno.test("(#13) deno.json's serve and compile tasks and the README run serve with the same V8 flags, --expose-gc among them", async () => {
  const deno = JSON.parse(await Deno.readTextFile(`${REPO_ROOT}deno.json`)) as {
    tasks: Record<string, string>;
  };
  const readme = await Deno.readTextFile(`${REPO_ROOT}README.md`);
  const flagsOf = (cmd: string) => cmd.match(/--v8-flags=(\S+)/)?.[1];
  const found = [
    ...["start", "dev", "compile", "compile:arm64"].map((t) => flagsOf(deno.tasks[t] ?? "")),
    flagsOf(readme.match(/^deno run --v8-flags=\S+ \\$/m)?.[0] ?? ""),
  ];
  const first = found[0];
  ok(first?.split(",").includes("--expose-gc"), `${first}`);
  deepEqual(found, found.map(() => first));
});
