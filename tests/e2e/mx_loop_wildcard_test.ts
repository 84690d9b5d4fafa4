/**
 * RFC 5321 §5.1 loop avoidance for a `serve` listening on wildcard addresses (0.0.0.0, [::]), as
 * on a VPS: a domain whose MX points at one of this host's addresses loops back to us and fails
 * at once (`554 5.4.6`), as Postfix does (it compares with inet_interfaces, all of the host's
 * addresses under `inet_interfaces = all`), instead of being sent to ourselves and deferred, or
 * refused by our own MX port, until it expires. So does an MX at an address reached through NAT
 * (`outbound.own_addresses`, Postfix's proxy_interfaces: a cloud VPS's public address is on no
 * interface of its own). Only the MX port's wildcard counts: with `smtp.listen` on one address and
 * submission on all of them, port 25 of the host's other addresses is someone else's (a Postfix
 * beside us), not a loop.
 *
 * The relay runs with exactly the documented permissions (README's `main.ts serve` line, paths
 * mapped, and the compile task's), in a network namespace of its own (`unshare -n`: root only, as
 * the port-25 tests) holding only loopback, with 192.0.2.25 added to `lo` as the host's "public"
 * address: a wildcard listener there reaches nothing beyond this test. dnsmasq answers inside.
 */
import { deepStrictEqual as assertEquals, ok as assert, rejects } from "node:assert/strict";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { dnsmasqConfig } from "../_helpers/dnsmasq.ts";
import { compileFlags, mapPaths, README_PATHS, readmeFlags } from "../_helpers/documented_flags.ts";
import { type ServerProcess, startServer } from "../_helpers/server_process.ts";
import { canBindPort25, findTool, toolTest } from "../_helpers/tools.ts";
import { until } from "../_helpers/wait_until.ts";
import { queueMx } from "../outbound/_batch_fixtures.ts";

/** The host's own address inside the namespace (on `lo`). */
const OURS = "192.0.2.25";
/** An address of ours reached through NAT: on no interface. */
const NATTED = "203.0.113.9";
const DNS_PORT = 5353;

/** The JSON log line of `to`'s first delivery outcome (failed or deferred), if any yet. */
function outcomeOf(logs: string, to: string): Record<string, unknown> | undefined {
  for (const line of logs.split("\n")) {
    if (!line.startsWith("{")) continue;
    const e = JSON.parse(line) as Record<string, unknown>;
    if ((e.event === "failed" || e.event === "deferred") && e.to === to) return e;
  }
  return undefined;
}

/** Stops the dnsmasq the script started (its PID in `pidFile`), if it still runs `conf`. */
async function stopDnsmasq(pidFile: string, conf: string): Promise<void> {
  const pid = Number((await Deno.readTextFile(pidFile).catch(() => "")).trim());
  if (!(pid > 0)) return;
  const runsOurs = async () =>
    (await Deno.readTextFile(`/proc/${pid}/cmdline`).catch(() => "")).includes(conf);
  if (!(await runsOurs())) return;
  Deno.kill(pid, "SIGTERM");
  await until("dnsmasq to exit", async () => !(await runsOurs()), 5_000);
}

/** Where a namespaced serve runs (`inNamespace`): its README paths, mapped. */
interface Paths {
  readonly etc: string;
  readonly data: string;
}

/**
 * Sets up the namespace's world (dnsmasq's config, a message queued for `bob@<domain>` before
 * serve starts: no port of ours is reachable) and hands `fn` the start of serve with `flags`,
 * wildcard listeners and `outbound` over the defaults; removes it all after.
 */
async function inNamespace(
  dnsmasq: string,
  domain: string,
  flags: (paths: Paths) => Promise<string[]>,
  more: Record<string, unknown>,
  fn: (start: () => Promise<ServerProcess>) => Promise<void>,
): Promise<void> {
  const tmp = await Deno.makeTempDir({ prefix: "odmr-mxloop-" });
  const paths = { etc: `${tmp}/etc`, data: `${tmp}/data` };
  await Deno.mkdir(paths.etc);
  await Deno.mkdir(paths.data, { mode: 0o700 });
  const conf = `${tmp}/dnsmasq.conf`;
  const pidFile = `${tmp}/dnsmasq.pid`;
  await Deno.writeTextFile(
    conf,
    dnsmasqConfig({
      mx: [
        { name: "iface.test", host: "mx.iface.test", preference: 10 },
        { name: "nat.test", host: "mx.nat.test", preference: 10 },
      ],
      hosts: [
        { name: "mx.iface.test", addresses: [OURS] },
        { name: "mx.nat.test", addresses: [NATTED] },
      ],
    }, DNS_PORT),
  );
  const store = new SqliteQueueStore(openDatabase(paths.data));
  try {
    await queueMx(store, `bob@${domain}`, { from: "", body: "Subject: hi\r\n\r\nhello\r\n" });
  } finally {
    await store.close();
  }
  // dnsmasq daemonizes once it is bound (its PID in pidFile, stopped below); then the shell
  // becomes serve, so the PID startServer knows is serve's.
  const script = [
    "set -e",
    "ip link set lo up",
    `ip addr add ${OURS}/32 dev lo`,
    `"${dnsmasq}" --conf-file="${conf}" --pid-file="${pidFile}" --user=root ` +
    `--log-facility="${tmp}/dnsmasq.log"`,
    'exec "$@"',
  ].join("\n");
  const denoFlags = await flags(paths);
  try {
    await fn(() =>
      startServer({
        configPath: `${paths.etc}/config.yaml`,
        dataDir: paths.data,
        denoFlags,
        prefix: ["unshare", "-n", "sh", "-c", script, "sh"],
        config: {
          hostname: "relay.example.net",
          "data_dir": paths.data,
          log: { format: "json" },
          smtp: { listen: ["0.0.0.0:0"] },
          odmr: { listen: ["[::]:0"] },
          ...more,
          outbound: {
            resolver: `127.0.0.1:${DNS_PORT}`,
            retry: ["1s"],
            // 192.0.2.25 is a documentation address: not public.
            "allow_private_mx": true,
            ...more.outbound as Record<string, unknown> | undefined,
          },
        },
      })
    );
  } finally {
    await stopDnsmasq(pidFile, conf);
    await Deno.remove(tmp, { recursive: true });
  }
}

/** The README's `main.ts serve` flags with its paths mapped to `paths`. */
async function readmeServeFlags(paths: Paths): Promise<string[]> {
  return mapPaths(await readmeFlags("serve"), {
    [README_PATHS.config]: paths.etc,
    [README_PATHS.data]: paths.data,
  });
}

await toolTest("serve on wildcard listeners: an MX at one of our addresses loops back, 554 5.4.6", [
  "dnsmasq",
  "unshare",
  "ip",
], async (t) => {
  if (!canBindPort25("mx_loop_wildcard", "a network namespace (unshare -n)")) return;
  const dnsmasq = (await findTool("dnsmasq"))!;
  for (const source of ["README", "compile task"] as const) {
    for (
      const [domain, extra] of [
        ["iface.test", {}],
        ["nat.test", { outbound: { "own_addresses": [NATTED] } }],
      ] as const
    ) {
      await t.step(`${source}: ${domain}`, async () => {
        const flags = source === "README" ? readmeServeFlags : () => compileFlags();
        await inNamespace(dnsmasq, domain, flags, extra, async (start) => {
          const server = await start();
          try {
            const to = `bob@${domain}`;
            await until(`an outcome for ${to}`, () => outcomeOf(server.logs(), to) !== undefined);
            const e = outcomeOf(server.logs(), to)!;
            assertEquals(e.event, "failed", `not a loop: ${JSON.stringify(e)}`);
            assert(String(e.reply).startsWith("554 5.4.6 "), String(e.reply));
            assert(server.logs().includes('"event":"outbound_mx_loop"'), server.logs());
          } finally {
            assertEquals(await server.stop(), 0, server.logs());
          }
        });
      });
    }
  }

  await t.step(
    "a wildcard listener that is not the MX port does not make the host's addresses ours",
    async () => {
      // The MX port (and ODMR's) on loopback only, submission on every address: port 25 of
      // 192.0.2.25 is another MTA's (here nobody's: refused), not ours.
      const more = {
        smtp: { listen: ["127.0.0.1:0"] },
        odmr: { listen: ["127.0.0.1:0"] },
        submission: { listen: ["0.0.0.0:0"] },
      };
      await inNamespace(dnsmasq, "iface.test", readmeServeFlags, more, async (start) => {
        const server = await start();
        try {
          const to = "bob@iface.test";
          await until(`an outcome for ${to}`, () => outcomeOf(server.logs(), to) !== undefined);
          const e = outcomeOf(server.logs(), to)!;
          assertEquals(
            [e.event, String(e.reply).slice(0, 9)],
            ["deferred", "451 4.4.1"],
            String(e.reply),
          );
        } finally {
          assertEquals(await server.stop(), 0, server.logs());
        }
      });
    },
  );

  await t.step(
    "without --allow-sys=networkInterfaces: one error line naming it, exit 1",
    async () => {
      const fewer = async (paths: Paths) =>
        (await readmeServeFlags(paths)).map((f) =>
          f.startsWith("--allow-sys=") ? "--allow-sys=hostname" : f
        );
      await inNamespace(dnsmasq, "iface.test", fewer, {}, async (start) => {
        await rejects(
          start(),
          /serve exited with code 1 before it was ready:\nerror: Requires sys access to "networkInterfaces", run again with the --allow-sys flag\n$/,
        );
      });
    },
  );
});
