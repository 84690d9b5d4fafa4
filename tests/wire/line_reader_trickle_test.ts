/**
 * Issue 13 review: one command line that arrives in many small reads costs no memory per read.
 * The callback-driven readLine (no async frame per command) first returned a new promise from
 * each read's callback, chaining one promise per read until the line ended: an endless line in
 * 8-byte packets grew serve from 59 to 298 MB in 30 s, well inside the 5 min line timeout.
 */
import { deepStrictEqual as equal, ok, rejects } from "node:assert/strict";
import { LineReader } from "../../src/wire/line_reader.ts";
import { REPO_ROOT } from "../_helpers/server_process.ts";

// Runs in a process of its own: the test runner has no --expose-gc.
const PROBE = `
import { LineReader } from "${REPO_ROOT}src/wire/line_reader.ts";
const READS = Number(Deno.args[0]);
const gc = globalThis.gc;
const piece = new Uint8Array(8).fill(65);
let n = 0, mid = 0;
const source = {
  read() {
    n++;
    if (n === READS / 2) { gc(); mid = Deno.memoryUsage().heapUsed; }
    if (n === READS) return Promise.resolve(new Uint8Array([13, 10]));
    return Promise.resolve(piece.slice());
  },
};
gc();
const before = Deno.memoryUsage().heapUsed;
const res = await new LineReader(source).readLine(512, 600_000);
console.log(JSON.stringify({ kind: res.kind, reads: n, grownBytes: mid - before }));
`;

Deno.test("(#13) an endless command line in many small reads holds no memory per read", async () => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-line-trickle-" });
  try {
    await Deno.writeTextFile(`${dir}/probe.ts`, PROBE);
    const reads = 200_000;
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--v8-flags=--expose-gc", `${dir}/probe.ts`, `${reads}`],
      cwd: REPO_ROOT,
      stdin: "null",
    }).output();
    equal(out.code, 0, new TextDecoder().decode(out.stderr));
    const got = JSON.parse(new TextDecoder().decode(out.stdout));
    equal(got.kind, "tooLong");
    equal(got.reads, reads);
    // 100k reads into one line: the chained promises held ~9.6 MB here; now nothing per read.
    ok(
      got.grownBytes < 1_000_000,
      `heap grew ${got.grownBytes} B over ${reads / 2} reads of one line`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("(#13) readLine while a line is pending is refused; the first line still arrives", async () => {
  let feed: (b: Uint8Array | null) => void = () => {};
  const source = { read: () => new Promise<Uint8Array | null>((r) => (feed = r)) };
  const reader = new LineReader(source);
  const first = reader.readLine(512);
  await rejects(reader.readLine(512), /already being read/);
  feed(new TextEncoder().encode("EHLO a\r\n"));
  const res = await first;
  ok(res.kind === "line");
  equal(new TextDecoder().decode(res.line), "EHLO a");
});

Deno.test("(#13) a read that fails mid-line rejects readLine, and the reader reads on afterwards", async () => {
  const reads: Array<() => Promise<Uint8Array | null>> = [
    () => Promise.resolve(new TextEncoder().encode("MAIL FR")),
    () => Promise.reject(new Error("timed out")),
    () => {
      throw new Error("socket gone");
    },
    () => Promise.resolve(new TextEncoder().encode("QUIT\r\n")),
  ];
  const reader = new LineReader({ read: () => reads.shift()!() });
  await rejects(reader.readLine(512), /timed out/);
  await rejects(reader.readLine(512), /socket gone/);
  const res = await reader.readLine(512);
  ok(res.kind === "line");
  ok(new TextDecoder().decode(res.line).endsWith("QUIT"));
});
