/**
 * A flag that takes one value, given twice, is a usage error naming it (exit 2, CONTRACT "Exit
 * codes"), as `--config` given twice is: the last one silently winning made
 * `queue delete --domain a.example --domain b.example --yes` delete b.example's mail alone,
 * and `dkim keygen D --selector s1 --selector s2` make s2 only. Nothing runs: the queue below
 * holds one message for each domain, and both are still there afterwards. The real process,
 * in a directory of its own (embedded defaults: data_dir ./data).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { runMain } from "../_helpers/server_process.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";

const CASES: { args: string[]; flag: string; command: string }[] = [
  {
    args: ["queue", "delete", "--domain", "a.example", "--domain", "b.example", "--yes"],
    flag: "--domain",
    command: "queue",
  },
  {
    args: ["queue", "list", "--domain", "a.example", "--domain=b.example"],
    flag: "--domain",
    command: "queue",
  },
  {
    args: ["queue", "list", "--older-than", "1d", "--older-than", "1s"],
    flag: "--older-than",
    command: "queue",
  },
  {
    args: ["queue", "requeue", "--domain", "a.example", "--domain", "b.example"],
    flag: "--domain",
    command: "queue",
  },
  { args: ["queue", "migrate", "--from", "x", "--from", "y"], flag: "--from", command: "queue" },
  {
    args: ["dkim", "keygen", "a.example", "--selector", "s1", "--selector", "s2"],
    flag: "--selector",
    command: "dkim",
  },
  {
    args: ["dkim", "keygen", "a.example", "--algorithm", "rsa", "--algorithm", "ed25519"],
    flag: "--algorithm",
    command: "dkim",
  },
  {
    args: ["user", "certs", "bob", "--add", "a.pem", "--add", "b.pem"],
    flag: "--add",
    command: "user",
  },
];

Deno.test("a one-value flag given twice is a usage error naming it, and nothing is done (exit 2)", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-twice-" });
  try {
    await Deno.mkdir(`${dir}/data`);
    const seed = new SqliteQueueStore(openDatabase(`${dir}/data`));
    try {
      await queueMessage(seed, { to: ["x@a.example"] });
      await queueMessage(seed, { to: ["y@b.example"] });
    } finally {
      await seed.close();
    }
    for (const { args, flag, command } of CASES) {
      await t.step(args.join(" "), async () => {
        const r = await runMain(args, { cwd: dir });
        assertEquals({ code: r.code, stdout: r.stdout, stderr: r.stderr }, {
          code: 2,
          stdout: "",
          stderr: `error: "${flag}" given twice: run "odmr-relay ${command} --help" for usage\n`,
        });
      });
    }
    const left = await runMain(["queue", "list", "--json"], { cwd: dir });
    const domains = JSON.parse(left.stdout).flatMap((m: { recipients: { domain: string }[] }) =>
      m.recipients.map((r) => r.domain)
    );
    assertEquals(domains.sort(), ["a.example", "b.example"]);
    const keys = await runMain(["dkim", "list", "--json"], { cwd: dir });
    assertEquals(JSON.parse(keys.stdout), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
