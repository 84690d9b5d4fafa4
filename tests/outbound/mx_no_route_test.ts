/**
 * A host without IPv6 routing (a VPS with IPv4 only): a connect to an MX host's IPv6 address
 * fails at once (ENETUNREACH), and such an address must not use up one of the 5 addresses a
 * delivery attempt may try (`MAX_MX_ADDRESSES`), else dual-stack MX hosts get only three IPv4
 * tries and mail whose reachable MTA is the fourth host waits for nothing. Run in a network
 * namespace with only loopback (`unshare -n`, root), so the lack of a route is real and the test
 * binds port 25 where no other test can see it.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";

/** Dual-stack MX hosts; only the last one's IPv4 address has an MTA (_no_route_world.ts). */
const HOSTS = 4;

await toolTest(
  "outbound: an IPv6 address without a route does not count towards the 5 addresses",
  ["dnsmasq", "unshare", "ip"],
  async () => {
    if (!canBindPort25("mx_no_route", "a network namespace")) return;
    const world = new URL("./_no_route_world.ts", import.meta.url).pathname;
    const out = await new Deno.Command("unshare", {
      args: [
        "-n",
        "sh",
        "-c",
        'ip link set lo up && exec "$0" run -A "$1" "$2"',
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
    // Each IPv6 address before it failed at once for want of a route; each IPv4 one was refused.
    const skipped: [string, string][] = r.skipped;
    assertEquals(skipped.length, 2 * (HOSTS - 1), stdout);
    for (const [host, reason] of skipped) {
      assert(/ENETUNREACH/.test(reason) === host.includes("2001:db8::"), `${host}: ${reason}`);
    }
  },
);
