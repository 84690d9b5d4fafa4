/**
 * Which addresses outbound delivery may connect to: a domain's owner chooses its MX records, and
 * one pointing them at 127.0.0.1, 10.0.0.5 or 169.254.169.254 would otherwise make the relay
 * connect inside its own host or network (SSRF). Public means globally reachable unicast: not
 * in the IANA special-purpose registries' ranges that are not globally reachable (RFC 6890 and
 * its updates), multicast or reserved; the blocks those registries mark globally reachable inside
 * them (anycast, AS112, AMT, ORCHIDv2, DRIP) are public. IPv4-mapped IPv6 addresses, 6to4
 * (2002::/16) and the NAT64 prefixes, well-known (64:ff9b::/96, RFC 6052) and local-use in its
 * /96 (64:ff9b:1::/96, RFC 8215), are judged by the IPv4 address inside them. Elsewhere in
 * 64:ff9b:1::/48 the IPv4 address sits where the operator's prefix length puts it (RFC 6052 §2.2),
 * unknown here: not public. `outbound.allow_private_mx` turns the check off (tests, relays inside a
 * private network).
 */
import { isIP } from "../config/_ip.ts";
import { canonicalIp } from "./mx_self.ts";

/** [first octet, second octet or undefined, prefix length] of the non-public IPv4 ranges. */
const V4_RANGES: readonly (readonly [number, number, number])[] = [
  [0, 0, 8], // "this network", 0.0.0.0 (connects to the host itself on Linux)
  [10, 0, 8], // RFC 1918
  [100, 64, 10], // shared address space (carrier-grade NAT), RFC 6598
  [127, 0, 8], // loopback
  [169, 254, 16], // link-local (cloud metadata services)
  [172, 16, 12], // RFC 1918
  [192, 168, 16], // RFC 1918
  [198, 18, 15], // benchmarking, RFC 2544
  [224, 0, 4], // multicast
  [240, 0, 4], // reserved, and 255.255.255.255
];
/** Non-public /24s: IETF protocol assignments, the three documentation nets, 6to4 relays. */
const V4_NETS_24 = new Set(["192.0.0", "192.0.2", "192.88.99", "198.51.100", "203.0.113"]);
/** Globally reachable inside 192.0.0.0/24: PCP anycast (RFC 7723), TURN anycast (RFC 8155). */
const V4_REACHABLE = new Set(["192.0.0.9", "192.0.0.10"]);

/** True when `address` (IPv4 or IPv6) is a public unicast address; false for anything else. */
export function isPublicAddress(address: string): boolean {
  const ip = canonicalIp(address);
  const family = isIP(ip);
  if (family === 4) return isPublicV4(ip);
  if (family !== 6) return false;
  const groups = ip.split(":").map((g) => parseInt(g, 16));
  const g = (i: number) => groups[i] ?? 0;
  // Global unicast is 2000::/3; everything else (::, ::1, fc00::/7, fe80::/10, ff00::/8, 100::/64,
  // the rest of 64:ff9b:1::/48) is not, except the NAT64 /96s, judged by their IPv4 address.
  if (
    g(0) === 0x64 && g(1) === 0xff9b && (g(2) === 0 || g(2) === 1) && g(3) === 0 && g(4) === 0 &&
    g(5) === 0
  ) {
    return isPublicV4(v4Of(g(6), g(7)));
  }
  if ((g(0) & 0xe000) !== 0x2000) return false;
  if (g(0) === 0x2002) return isPublicV4(v4Of(g(1), g(2))); // 6to4
  if (g(0) === 0x2001 && g(1) < 0x200) return isReachableIetf(groups); // 2001::/23
  if (g(0) === 0x2001 && g(1) === 0x0db8) return false; // documentation, 2001:db8::/32
  if (g(0) === 0x3fff && g(1) < 0x1000) return false; // documentation, 3fff::/20 (RFC 9637)
  return true;
}

/**
 * The globally reachable blocks of 2001::/23 (IETF protocol assignments, otherwise not public):
 * PCP, TURN and DNS-SD SRP anycast (2001:1::1-3, RFC 7723, 8155, 9665), AMT (2001:3::/32,
 * RFC 7450), AS112-v6 (2001:4:112::/48, RFC 7535), ORCHIDv2 (2001:20::/28, RFC 7343) and DRIP
 * entity tags (2001:30::/28, RFC 9374).
 */
function isReachableIetf(groups: readonly number[]): boolean {
  const [, g1 = 0, g2 = 0, g3 = 0, g4 = 0, g5 = 0, g6 = 0, g7 = 0] = groups;
  if (g1 === 1) {
    return g2 === 0 && g3 === 0 && g4 === 0 && g5 === 0 && g6 === 0 && g7 >= 1 && g7 <= 3;
  }
  if (g1 === 3) return true;
  if (g1 === 4) return g2 === 0x112;
  return g1 >= 0x20 && g1 <= 0x3f;
}

function isPublicV4(ip: string): boolean {
  if (V4_REACHABLE.has(ip)) return true;
  const octets = ip.split(".").map(Number);
  const [a = 0, b = 0] = octets;
  if (V4_NETS_24.has(octets.slice(0, 3).join("."))) return false;
  for (const [first, second, bits] of V4_RANGES) {
    if (
      bits <= 8 ? a >> (8 - bits) === first >> (8 - bits) : (
        a === first && b >> (16 - bits) === second >> (16 - bits)
      )
    ) return false;
  }
  return true;
}

function v4Of(hi: number, lo: number): string {
  return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
}
