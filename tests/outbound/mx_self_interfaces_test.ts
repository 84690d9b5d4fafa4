/**
 * Our addresses for RFC 5321 §5.1 loop avoidance (src/outbound/mx_self.ts), as Postfix's
 * inet_interfaces and proxy_interfaces: with a listener on a wildcard address, every address of
 * the host's interfaces (read again at most once a minute); `outbound.own_addresses` (NAT)
 * always. Then resolveMx against a real dnsmasq: an MX host at one of them is us, discarded
 * with the less preferred ones; a loop when none more preferred is left, and the mail waits
 * when the more preferred ones have no address (a backup MX keeps the mail for its primary).
 * The whole process with wildcard listeners: tests/e2e/mx_loop_wildcard_test.ts.
 */
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { resolveMx } from "../../src/outbound/mx.ts";
import {
  interfaceAddresses,
  INTERFACES_MAX_AGE_MS,
  listensEverywhere,
  ownHost,
} from "../../src/outbound/mx_self.ts";
import { startDnsmasq } from "../_helpers/dnsmasq.ts";
import { toolTest } from "../_helpers/tools.ts";

Deno.test("ownHost: interface addresses count only while a listener is a wildcard", () => {
  let reads = 0;
  const interfaces = () => {
    reads++;
    return ["198.51.100.7", "2001:db8::7"];
  };
  for (const host of ["0.0.0.0", "::", "[::]", "0:0:0:0:0:0:0:0"]) {
    assert(listensEverywhere([{ host: "127.0.0.1" }, { host }]), host);
    const self = ownHost(["relay.example.net"], [{ host: "127.0.0.1" }, { host }], {
      natted: ["203.0.113.9"],
      interfaces,
    });
    assertEquals(self.addresses, [
      "203.0.113.9",
      "127.0.0.1",
      "198.51.100.7",
      "2001:db8::7",
    ]);
  }
  assertEquals(reads, 4);
  // Specific listeners only: the interfaces are not ours to take mail on, and not read.
  const specific = ownHost(["relay.example.net"], [{ host: "192.0.2.1" }, { host: "mx.test" }], {
    natted: ["2001:db8::9"],
    interfaces,
  });
  assert(!listensEverywhere([{ host: "192.0.2.1" }, { host: "mx.test" }]));
  assertEquals(specific.addresses, [
    "2001:0db8:0000:0000:0000:0000:0000:0009",
    "192.0.2.1",
  ]);
  assertEquals(specific.names, ["relay.example.net", "mx.test"]);
  assertEquals(reads, 4);
});

Deno.test("interfaceAddresses: read at once, again after a minute; failures keep the last", () => {
  let clock = 0;
  let answer: () => { address: string }[] = () => [{ address: "198.51.100.7" }];
  let reads = 0;
  const errors: string[] = [];
  const addresses = interfaceAddresses({
    onError: (err) => errors.push(String(err)),
    read: () => {
      reads++;
      return answer();
    },
    now: () => clock,
  });
  assertEquals(reads, 1);
  answer = () => [{ address: "198.51.100.8" }, { address: "fe80::1%eth0" }];
  clock = INTERFACES_MAX_AGE_MS - 1;
  assertEquals(addresses(), ["198.51.100.7"]);
  clock = INTERFACES_MAX_AGE_MS;
  assertEquals(addresses(), ["198.51.100.8", "fe80:0000:0000:0000:0000:0000:0000:0001"]);
  assertEquals(reads, 2);
  // Failing (a sandbox without netlink): said once, the last addresses kept.
  answer = () => {
    throw new Error("Address family not supported by protocol");
  };
  for (let i = 1; i <= 3; i++) {
    clock += INTERFACES_MAX_AGE_MS;
    assertEquals(addresses(), ["198.51.100.8", "fe80:0000:0000:0000:0000:0000:0000:0001"]);
  }
  assertEquals(errors, ["Error: Address family not supported by protocol"]);
  answer = () => [{ address: "198.51.100.9" }];
  clock += INTERFACES_MAX_AGE_MS;
  assertEquals(addresses(), ["198.51.100.9"]);
});

Deno.test("interfaceAddresses: a missing grant throws at the first read; another error is said", () => {
  throws(
    () =>
      interfaceAddresses({
        onError: () => {},
        read: () => {
          throw new Deno.errors.NotCapable('Requires sys access to "networkInterfaces"');
        },
      }),
    Deno.errors.NotCapable,
  );
  const errors: unknown[] = [];
  const addresses = interfaceAddresses({
    onError: (err) => errors.push(err),
    read: () => {
      throw new Error("netlink refused");
    },
  });
  assertEquals(addresses(), []);
  assertEquals(errors.length, 1);
});

await toolTest("resolveMx: an MX host at one of our interface or NAT addresses is us", [
  "dnsmasq",
], async (t) => {
  await using dns = await startDnsmasq({
    mx: [
      { name: "iface.test", host: "mx.iface.test", preference: 10 },
      { name: "nat.test", host: "mx.nat.test", preference: 10 },
      { name: "backup.test", host: "primary.backup.test", preference: 10 },
      { name: "backup.test", host: "mx.iface.test", preference: 20 },
      { name: "held.test", host: "bare.held.test", preference: 10 },
      { name: "held.test", host: "mx.nat.test", preference: 20 },
    ],
    hosts: [
      { name: "mx.iface.test", addresses: ["2001:db8::7"] },
      { name: "mx.nat.test", addresses: ["203.0.113.9"] },
      { name: "primary.backup.test", addresses: ["127.0.0.2"] },
    ],
    txt: [{ name: "bare.held.test", strings: ["exists, no address"] }],
  });
  const nameServer = { ipAddr: dns.ipAddr, port: dns.port };
  const self = ownHost(["relay.example.net"], [{ host: "::" }], {
    natted: ["203.0.113.9"],
    interfaces: () => ["127.0.0.1", "2001:db8:0:0::7"],
  });
  const resolve = (domain: string) => resolveMx(domain, { nameServer, allowPrivate: true, self });

  await t.step("our only MX at an interface address or a NAT address: a loop", async () => {
    for (const domain of ["iface.test", "nat.test"]) {
      assertEquals(await resolve(domain), {
        kind: "permanent",
        reason: "mx_loop",
        status: "5.4.6",
      }, domain);
    }
  });

  await t.step("ours as the backup MX: only the primary is tried", async () => {
    const r = await resolve("backup.test");
    assert(r.kind === "hosts", JSON.stringify(r));
    assertEquals(r.hosts.map((h) => h.name), ["primary.backup.test"]);
  });

  await t.step("ours as the backup of a primary without an address: the mail waits", async () => {
    const r = await resolve("held.test");
    assert(r.kind === "temporary", JSON.stringify(r));
    assertEquals([r.reason, r.status], ["no_addresses", "4.4.3"]);
  });
});
