/**
 * A host without IPv6 routing (a VPS with IPv4 only): a connect to an MX host's IPv6 address
 * fails at once (ENETUNREACH), and such an address must not use up one of the 5 addresses a
 * delivery attempt may try (`MAX_MX_ADDRESSES`), else dual-stack MX hosts get only three IPv4
 * tries and mail whose reachable MTA is the fourth host waits for nothing. The same on a host
 * where IPv6 is switched off (`net.ipv6.conf.all.disable_ipv6 = 1`, a common way to "turn IPv6
 * off" on a VPS): there the connect fails at once with EADDRNOTAVAIL (no source address; EINVAL
 * through node:net). Run in a network namespace with only loopback (`unshare -n`, root), so the
 * lack of a route is real and the test binds port 25 where no other test can see it.
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

await toolTest(
  "outbound: an IPv6 address without a route does not count towards the 5 addresses",
  ["dnsmasq", "unshare", "ip", "sysctl"],
  async (t) => {
    if (!canBindPort25("mx_no_route", "a network namespace")) return;
    const world = new URL("./_no_route_world.ts", import.meta.url).pathname;
    for (const { name, setUp, error } of CASES) {
      await t.step(name, async () => {
        const out = await new Deno.Command("unshare", {
          args: [
            "-n",
            "sh",
            "-c",
            `${setUp} && exec "$0" run -A "$1" "$2"`,
            Deno.execPath(),
            world,
            String(HOSTS),
          ],
          stdout: "piped",
          stderr: "piped",
        }).output();
        const stdout = new TextDecoder().decode(out.stdout);
        const stderr = new TextDecoder().decode(out.stderr);
        assert(out.success, `${stdout}\n${stderr}`);
        const r = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}");
        assertEquals(r.outcomes, ["delivered"], stdout);
        assertEquals(r.host, `mx${HOSTS - 1}.dual.test[127.0.0.${10 + HOSTS}]`);
        assertEquals(r.arrived, 1);
        // Each IPv6 address before it failed at once; each IPv4 one was refused.
        const skipped: [string, string][] = r.skipped;
        assertEquals(skipped.length, 2 * (HOSTS - 1), stdout);
        for (const [host, reason] of skipped) {
          assert(error.test(reason) === host.includes("2001:db8::"), `${host}: ${reason}`);
        }
      });
    }
  },
);
