/**
 * Which addresses outbound delivery may connect to: a domain's owner chooses its MX records, and
 * one pointing them at 127.0.0.1, 10.0.0.5 or 169.254.169.254 would otherwise make the relay
 * connect inside its own host or network (SSRF). Public means globally reachable unicast: not
 * in the IANA special-purpose registries' ranges that are not globally reachable (RFC 6890 and
 * its updates), multicast or reserved. IPv4-mapped IPv6 addresses, 6to4 (2002::/16) and the
 * well-known NAT64 prefix (64:ff9b::/96, RFC 6052) are judged by the IPv4 address inside them.
 * `outbound.allow_private_mx` turns the check off (tests, relays inside a private network).
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

/** True when `address` (IPv4 or IPv6) is a public unicast address; false for anything else. */
export function isPublicAddress(address: string): boolean {
  const ip = canonicalIp(address);
  const family = isIP(ip);
  if (family === 4) return isPublicV4(ip);
  if (family !== 6) return false;
  const groups = ip.split(":").map((g) => parseInt(g, 16));
  const g = (i: number) => groups[i] ?? 0;
  // Global unicast is 2000::/3; everything else (::, ::1, fc00::/7, fe80::/10, ff00::/8, 100::/64,
  // 64:ff9b:1::/48) is not, except the NAT64 well-known prefix, judged by its IPv4 address.
  if (g(0) === 0x64 && g(1) === 0xff9b && g(2) === 0 && g(3) === 0 && g(4) === 0 && g(5) === 0) {
    return isPublicV4(v4Of(g(6), g(7)));
  }
  if ((g(0) & 0xe000) !== 0x2000) return false;
  if (g(0) === 0x2002) return isPublicV4(v4Of(g(1), g(2))); // 6to4
  if (g(0) === 0x2001 && g(1) < 0x200) return false; // IETF protocol assignments, 2001::/23
  if (g(0) === 0x2001 && g(1) === 0x0db8) return false; // documentation, 2001:db8::/32
  if (g(0) === 0x3fff && g(1) < 0x1000) return false; // documentation, 3fff::/20 (RFC 9637)
  return true;
}

function isPublicV4(ip: string): boolean {
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
