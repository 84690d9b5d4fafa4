/**
 * A host without IPv6 routing (a VPS with IPv4 only): a connect to an MX host's IPv6 address
 * fails at once (ENETUNREACH), and such an address must not use up one of the 5 addresses a
 * delivery attempt may try (`MAX_MX_ADDRESSES`), else dual-stack MX hosts get only three IPv4
 * tries and mail whose reachable MTA is the fourth host waits for nothing. The same on a host
 * where IPv6 is switched off (`net.ipv6.conf.all.disable_ipv6 = 1`, a common way to "turn IPv6
 * off" on a VPS): there the connect fails at once with EADDRNOTAVAIL (no source address; EINVAL
 * through node:net). Run in a network namespace with only loopback (`unshare -n`, root), so the
 * lack of a route is real and the test binds port 25 where no other test can see it. Once one
 * IPv6 address failed so, the attempt tries no other (each would fail the same way: an MX host
 * with hundreds of AAAA records cost a connect and a log line each, per attempt).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";

/** Dual-stack MX hosts; only the last one's IPv4 address has an MTA (_no_route_world.ts). */
const HOSTS = 4;

/** Each way a host has no IPv6: the shell set-up in the namespace, and the connect's error. */
const CASES = [
  { name: "no IPv6 route", setUp: "ip link set lo up", error: /ENETUNREACH/ },
  {
    name: "IPv6 switched off",
    setUp: "ip link set lo up && sysctl -qw net.ipv6.conf.all.disable_ipv6=1 " +
      "net.ipv6.conf.lo.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1",
    // EADDRNOTAVAIL: no source address; Deno's node:net reports it as EINVAL.
    error: /EADDRNOTAVAIL|EINVAL/,
  },
] as const;

/** Runs _no_route_world.ts in a namespace set up by `setUp`; its JSON line. */
async function runWorld(setUp: string, hosts: number, v6: number) {
  const world = new URL("./_no_route_world.ts", import.meta.url).pathname;
  const out = await new Deno.Command("unshare", {
    args: [
      "-n",
      "sh",
      "-c",
      `${setUp} && exec "$0" run -A "$1" "$2" "$3"`,
      Deno.execPath(),
      world,
      String(hosts),
      String(v6),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assert(out.success, `${stdout}\n${stderr}`);
  const r = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
  return {
    stdout,
    outcomes: r.outcomes as string[],
    host: r.host as string,
    arrived: r.arrived as number,
    skipped: r.skipped as [string, string][],
  };
}

await toolTest(
  "outbound: an IPv6 address without a route does not count towards the 5 addresses",
  ["dnsmasq", "unshare", "ip", "sysctl"],
  async (t) => {
    if (!canBindPort25("mx_no_route", "a network namespace")) return;
    for (const { name, setUp, error } of CASES) {
      await t.step(name, async () => {
        const r = await runWorld(setUp, HOSTS, 1);
        assertEquals(r.outcomes, ["delivered"], r.stdout);
        assertEquals(r.host, `mx${HOSTS - 1}.dual.test[127.0.0.${10 + HOSTS}]`);
        assertEquals(r.arrived, 1);
        // Each IPv4 address before it was refused; the first IPv6 one failed at once, and the
        // other IPv6 addresses of the attempt were not tried (no connect, no line).
        const v6 = r.skipped.filter(([host]) => host.includes("2001:db8:"));
        assertEquals(r.skipped.length - v6.length, HOSTS - 1, r.stdout);
        assertEquals(v6.length, 1, r.stdout);
        for (const [host, reason] of v6) assert(error.test(reason), `${host}: ${reason}`);
      });
    }
    await t.step("an MX host with 30 IPv6 addresses: one connect, not 30", async () => {
      const r = await runWorld(CASES[0].setUp, 2, 30);
      assertEquals(r.outcomes, ["delivered"], r.stdout);
      assertEquals(r.arrived, 1);
      // Its IPv4 address, then one of its IPv6 ones (the server orders them as it likes).
      const hosts = r.skipped.map(([host]) => host);
      assertEquals(hosts.length, 2, r.stdout);
      assertEquals(hosts[0], "mx0.dual.test[127.0.0.11]");
      assert(/^mx0\.dual\.test\[2001:db8:\d+::1\]$/.test(hosts[1] ?? ""), r.stdout);
    });
  },
);
