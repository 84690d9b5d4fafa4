/**
 * Run as its own process by store_test.ts (a parallel test run shares one process, so RSS
 * must be measured alone): prints how many MB of RSS 30k owner lookups added.
 */
import { withStore } from "./_fixtures.ts";

const rssMb = () =>
  Number(Deno.readTextFileSync("/proc/self/status").match(/^VmRSS:\s+(\d+)/m)?.[1] ?? 0) / 1024;

await withStore(async (store) => {
  await store.addUser("alice", "pw", ["example.org"]);
  const before = rssMb();
  for (let i = 0; i < 30_000; i++) {
    if (store.ownerOf("example.org") !== "alice") throw new Error("lookup failed");
  }
  // deno-lint-ignore no-console -- the figure is this script's output
  console.log((rssMb() - before).toFixed(1));
});
