/** MX resolution against a real DNS server (dnsmasq on 127.0.0.1, records from the test). */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import dgram from "node:dgram";
import { orderByPreference, resolveMx } from "../../src/outbound/mx.ts";
import { type DnsRecords, startDnsmasq } from "../_helpers/dnsmasq.ts";
import { toolTest } from "../_helpers/tools.ts";

const RECORDS: DnsRecords = {
  mx: [
    { name: "pref.test", host: "mx2.pref.test", preference: 20 },
    { name: "pref.test", host: "mx1.pref.test", preference: 10 },
    { name: "pref.test", host: "mx3.pref.test", preference: 30 },
    { name: "equal.test", host: "a.equal.test", preference: 10 },
    { name: "equal.test", host: "b.equal.test", preference: 10 },
    { name: "equal.test", host: "c.equal.test", preference: 10 },
    { name: "equal.test", host: "backup.equal.test", preference: 50 },
    { name: "null.test", host: ".", preference: 0 },
    { name: "partial.test", host: "gone.partial.test", preference: 5 },
    { name: "partial.test", host: "ok.partial.test", preference: 10 },
    { name: "dangling.test", host: "gone.dangling.test", preference: 10 },
  ],
  hosts: [
    { name: "mx1.pref.test", addresses: ["127.0.0.2"] },
    { name: "mx2.pref.test", addresses: ["127.0.0.3", "::1"] },
    { name: "mx3.pref.test", addresses: ["::1"] },
    { name: "a.equal.test", addresses: ["127.0.0.11"] },
    { name: "b.equal.test", addresses: ["127.0.0.12"] },
    { name: "c.equal.test", addresses: ["127.0.0.13"] },
    { name: "backup.equal.test", addresses: ["127.0.0.14"] },
    { name: "ok.partial.test", addresses: ["127.0.0.5"] },
    { name: "implicit.test", addresses: ["127.0.0.4", "::1"] },
    { name: "v6only.test", addresses: ["::1"] },
  ],
  // gone.dangling.test exists (NOERROR) without an address; an NXDOMAIN host: mx_nxdomain_test.
  txt: [{ name: "gone.dangling.test", strings: ["exists"] }],
};

/** A deterministic random source (LCG), so the shuffling tests never flake. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

await toolTest("resolveMx against dnsmasq", ["dnsmasq"], async (t) => {
  await using dns = await startDnsmasq(RECORDS);
  const nameServer = { ipAddr: dns.ipAddr, port: dns.port };

  await t.step("MX hosts come lowest preference first, each with its A then AAAA", async () => {
    const r = await resolveMx("pref.test", { nameServer, allowPrivate: true });
    assertEquals(r, {
      kind: "hosts",
      isImplicit: false,
      hosts: [
        { name: "mx1.pref.test", preference: 10, addresses: ["127.0.0.2"] },
        { name: "mx2.pref.test", preference: 20, addresses: ["127.0.0.3", "::1"] },
        { name: "mx3.pref.test", preference: 30, addresses: ["::1"] },
      ],
    });
  });

  await t.step("equal preferences are shuffled; the backup stays last", async () => {
    const firsts = new Set<string>();
    const random = seeded(7);
    for (let i = 0; i < 30; i++) {
      const r = await resolveMx("equal.test", { nameServer, allowPrivate: true, random });
      assert(r.kind === "hosts");
      assertEquals(r.hosts.length, 4);
      assertEquals(r.hosts[3]?.name, "backup.equal.test");
      assertEquals(
        r.hosts.slice(0, 3).map((h) => h.name).sort(),
        ["a.equal.test", "b.equal.test", "c.equal.test"],
      );
      firsts.add(r.hosts[0]!.name);
    }
    assertEquals(firsts.size, 3);
  });

  await t.step("no MX: the domain's own A/AAAA is the implicit MX (RFC 5321 §5.1)", async () => {
    assertEquals(await resolveMx("implicit.test", { nameServer, allowPrivate: true }), {
      kind: "hosts",
      isImplicit: true,
      hosts: [{ name: "implicit.test", preference: 0, addresses: ["127.0.0.4", "::1"] }],
    });
    const v6 = await resolveMx("v6only.test", { nameServer, allowPrivate: true });
    assert(v6.kind === "hosts");
    assertEquals(v6.hosts[0]?.addresses, ["::1"]);
  });

  await t.step("a null MX is a permanent refusal, 5.1.10 (RFC 7505)", async () => {
    assertEquals(await resolveMx("null.test", { nameServer, allowPrivate: true }), {
      kind: "permanent",
      reason: "null_mx",
      status: "5.1.10",
    });
  });

  await t.step("a domain with no MX and no address is permanent, 5.1.2", async () => {
    assertEquals(await resolveMx("nowhere.test", { nameServer, allowPrivate: true }), {
      kind: "permanent",
      reason: "no_such_domain",
      status: "5.1.2",
    });
  });

  await t.step("an MX host without an address is skipped", async () => {
    const r = await resolveMx("partial.test", { nameServer, allowPrivate: true });
    assert(r.kind === "hosts");
    assertEquals(r.hosts.map((h) => h.name), ["ok.partial.test"]);
  });

  await t.step("no MX host with an address (each exists) is permanent, 5.4.4", async () => {
    // RFC 5321 §5.1, Postfix's "Host found but no data record" (mx_nodata_test.ts).
    assertEquals(await resolveMx("dangling.test", { nameServer, allowPrivate: true }), {
      kind: "permanent",
      reason: "no_host_address",
      status: "5.4.4",
    });
  });

  await t.step("an invalid domain is refused without a query", async () => {
    assertEquals((await resolveMx("bad..test", { nameServer })).kind, "permanent");
    assertEquals((await resolveMx("[127.0.0.1]", { nameServer })).kind, "permanent");
  });
});

Deno.test("resolveMx: a DNS server that does not answer is a temporary failure", async () => {
  // A bound UDP socket that never replies: the query times out.
  const silent = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => silent.bind(0, "127.0.0.1", () => resolve()));
  try {
    const r = await resolveMx("example.test", {
      nameServer: { ipAddr: "127.0.0.1", port: silent.address().port },
      timeoutMs: 300,
    });
    assertEquals(r.kind, "temporary");
    assert(r.kind === "temporary");
    assertEquals([r.reason, r.status], ["dns_error", "4.4.3"]);
  } finally {
    await new Promise<void>((resolve) => silent.close(() => resolve()));
  }
});

Deno.test("orderByPreference keeps every record and sorts the groups", () => {
  const records = [30, 10, 20, 10, 30, 10].map((preference, i) => ({
    preference,
    exchange: `h${i}.test.`,
  }));
  for (let seed = 1; seed <= 20; seed++) {
    const got = orderByPreference(records, seeded(seed));
    assertEquals(got.map((r) => r.preference), [10, 10, 10, 20, 30, 30]);
    assertEquals(got.map((r) => r.exchange).sort(), records.map((r) => r.exchange).sort());
  }
});
