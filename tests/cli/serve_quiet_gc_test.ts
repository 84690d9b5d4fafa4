/**
 * Issue 13 (idle memory): serve's QuietCollector runs one memory-reducing GC once no session
 * has been open for a while after some activity, never while a session is open, once per
 * quiet period; and the collection it asks V8 for does give heap back.
 */
import { deepEqual, equal, ok } from "node:assert/strict";
import { QuietCollector } from "../../src/cli/_serve_quiet_gc.ts";
import { until } from "../_helpers/wait_until.ts";
import { REPO_ROOT, startServer } from "../_helpers/server_process.ts";

const QUIET_MS = 40;

/** A collector over a counter; `open` says whether a session is open. */
function collector(quietMs = QUIET_MS) {
  const state = { open: false, collections: 0, at: [] as number[] };
  const t0 = performance.now();
  const quiet = new QuietCollector({
    collect: () => {
      state.collections++;
      state.at.push(performance.now() - t0);
    },
    isQuiet: () => !state.open,
    quietMs,
  });
  return { state, quiet };
}

/** Waits `ms` (only to show that nothing happens meanwhile). */
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("(#13) QuietCollector: one collection quietMs after the last activity, then none until the next", async () => {
  const { state, quiet } = collector();
  try {
    equal(state.collections, 0);
    quiet.busy();
    await pause(QUIET_MS / 2);
    quiet.busy(); // the quiet period starts again
    await until("the collection", () => state.collections === 1);
    ok((state.at[0] ?? 0) >= QUIET_MS * 1.5 - 2, `collected at ${state.at[0]} ms`);
    await pause(QUIET_MS * 3);
    equal(state.collections, 1); // nothing new happened: nothing more to give back
    quiet.busy();
    await until("the second collection", () => state.collections === 2);
  } finally {
    quiet.stop();
  }
});

Deno.test("(#13) QuietCollector: never while a session is open; the session's end starts the quiet period", async () => {
  const { state, quiet } = collector();
  try {
    state.open = true;
    quiet.busy();
    await pause(QUIET_MS * 3);
    equal(state.collections, 0);
    state.open = false;
    quiet.busy(); // what OpenSessions.leave() does
    await until("the collection", () => state.collections === 1);
  } finally {
    quiet.stop();
  }
});

Deno.test("(#13) QuietCollector: nothing after stop(), and nothing at all without a collection", async () => {
  const { state, quiet } = collector();
  quiet.busy();
  quiet.stop();
  quiet.busy();
  await pause(QUIET_MS * 3);
  equal(state.collections, 0);
  // Without --expose-gc there is nothing to call: no timer either (the test's sanitizer
  // would report one left running).
  const none = new QuietCollector({ collect: undefined, isQuiet: () => true, quietMs: 1 });
  none.busy();
});

Deno.test("(#13) the collection serve asks for gives V8's heap back (--expose-gc)", async () => {
  // Grows the heap with garbage and collects it with a regular full GC, then collects as
  // serve does: prints the committed heap before and after the latter. A regular GC keeps
  // pages a memory-reducing one gives back.
  const script = `
    import { exposedFullGc } from "${REPO_ROOT}src/cli/_serve_quiet_gc.ts";
    let keep = [];
    for (let i = 0; i < 200_000; i++) keep.push({ i, s: "x".repeat(i % 64) });
    keep = [];
    gc({ type: "major", execution: "sync" });
    const before = Deno.memoryUsage().heapTotal;
    exposedFullGc()();
    console.log(JSON.stringify([before, Deno.memoryUsage().heapTotal]));
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--v8-flags=--expose-gc", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  equal(out.code, 0, text);
  const [before, after] = JSON.parse(text) as [number, number];
  ok(after < before / 2, `heap ${before} → ${after}`);
  // Without --expose-gc there is no collection to make.
  const plain = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      `import { exposedFullGc } from "${REPO_ROOT}src/cli/_serve_quiet_gc.ts";` +
      `console.log(exposedFullGc() === undefined)`,
    ],
    stdout: "piped",
  }).output();
  deepEqual(new TextDecoder().decode(plain.stdout).trim(), "true");
});

Deno.test("(#13) serve with --expose-gc collects once it is idle after start-up", async () => {
  const server = await startServer({
    denoFlags: ["-A", "--v8-flags=--expose-gc"],
    config: { log: { level: "debug" } },
  });
  try {
    const line = () => server.logs().split("\n").find((l) => l.includes("event=memory_collected"));
    await until("serve's collection after start-up", () => line() !== undefined);
    const before = Number(/heap_before=(\d+)/.exec(line() ?? "")?.[1]);
    const after = Number(/heap_after=(\d+)/.exec(line() ?? "")?.[1]);
    ok(after > 0 && after < before, line());
  } finally {
    await server.stop();
  }
});
