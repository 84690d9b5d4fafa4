/**
 * Long fuzz runs: `deno task fuzz` runs the property tests of tests/fuzz/ with many more cases
 * (FUZZ_RUNS, default 20000; `deno task fuzz 100000` also works). Bounded: fast-check stops
 * after that many cases per property and prints the seed of any counterexample.
 */
const root = new URL("../../", import.meta.url).pathname;
const fromArg = Number(Deno.args[0]);
const runs = Number.isFinite(fromArg) && fromArg > 0
  ? String(Math.floor(fromArg))
  : Deno.env.get("FUZZ_RUNS") ?? "20000";
// deno-lint-ignore no-console -- a CLI runner says what it runs
console.log(`fuzz: FUZZ_RUNS=${runs}`);
const child = new Deno.Command(Deno.execPath(), {
  args: ["test", "--allow-all", "--parallel", "tests/fuzz/"],
  cwd: root,
  env: { FUZZ_RUNS: runs },
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
Deno.exit((await child.status).code);
