/**
 * Review wt20-outdns: a domain with more MX records than resolveMx looks up (MAX_MX_HOSTS, 20:
 * hundreds of MX hosts are abuse, each costs two address queries). The most preferred 20 are
 * kept, equal preferences shuffled first (RFC 5321 §5.1). But our own host must be found among
 * all of them: RFC 5321 §5.1 "MUST discard" our host and every host of equal or higher
 * preference number. When our name was among the records cut, hosts of our own preference were
 * tried (25 equal MX hosts: some shuffles sent the mail to a peer instead of looping back). By name
 * that costs no query; by address only the looked-up hosts can be ours. An MX answer longer than a
 * UDP answer may be (about 7 KB) is read whole (over TCP). A real dnsmasq answers.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { resolveMx } from "../../src/outbound/mx.ts";
import { startDnsmasq } from "../_helpers/dnsmasq.ts";
import { toolTest } from "../_helpers/tools.ts";

/** A deterministic random source (LCG), so the shuffling never flakes. */
function seeded(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const US = { names: ["relay.example.net"], addresses: [] };

await toolTest("resolveMx with more MX records than it looks up", ["dnsmasq"], async (t) => {
  const ranked = Array.from({ length: 30 }, (_, i) => `mx${i + 1}.ranked.test`);
  const equal = Array.from({ length: 24 }, (_, i) => `mx${i + 1}.equal.test`);
  // About 7 KB of MX records: more than a UDP answer holds (EDNS 4096), so read over TCP.
  const long = Array.from(
    { length: 100 },
    (_, i) => `mx${i + 1}.a-long-host-name-that-fills-the-answer-quickly.long.test`,
  );
  await using dns = await startDnsmasq({
    mx: [
      ...ranked.map((host, i) => ({ name: "ranked.test", host, preference: i + 1 })),
      ...equal.map((host) => ({ name: "equal.test", host, preference: 10 })),
      { name: "equal.test", host: "relay.example.net", preference: 10 },
      ...long.map((host, i) => ({ name: "long.test", host, preference: 100 - i })),
    ],
    hosts: [...ranked, ...equal, "relay.example.net", ...long].map((name, i) => ({
      name,
      addresses: [`127.0.${1 + (i >> 8)}.${i & 255}`],
    })),
  });
  const nameServer = { ipAddr: dns.ipAddr, port: dns.port };

  await t.step("at most 20 hosts, the most preferred", async () => {
    const r = await resolveMx("ranked.test", { nameServer, allowPrivate: true });
    assert(r.kind === "hosts", JSON.stringify(r));
    assertEquals(r.hosts.map((h) => h.name), ranked.slice(0, 20));
  });

  await t.step(
    "an answer longer than a UDP datagram: all of it, the 20 most preferred",
    async () => {
      const r = await resolveMx("long.test", { nameServer, allowPrivate: true });
      assert(r.kind === "hosts", JSON.stringify(r));
      assertEquals(r.hosts.map((h) => h.name), long.slice(80).reverse());
    },
  );

  await t.step("ourselves among 25 equal MX hosts: a loop whatever the shuffle", async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const r = await resolveMx("equal.test", {
        nameServer,
        allowPrivate: true,
        self: US,
        random: seeded(seed),
      });
      assertEquals(r, { kind: "permanent", reason: "mx_loop", status: "5.4.6" }, `seed ${seed}`);
    }
  });
});
