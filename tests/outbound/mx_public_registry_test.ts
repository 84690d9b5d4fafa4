/**
 * isPublicAddress against the IANA special-purpose address registries (IPv4 and IPv6, RFC 6890
 * and their updates), entry by entry: an address inside each entry whose "Globally Reachable"
 * is false is not public, one inside an entry whose value is true is (the globally reachable
 * anycast and service blocks carved out of 192.0.0.0/24 and 2001::/23), and the local-use
 * NAT64 prefix of RFC 8215 is judged by the IPv4 address inside it, as the well-known one.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { isPublicAddress } from "../../src/outbound/mx_public.ts";

/** [address, expected, the registry entry it stands for]. */
const CASES: readonly (readonly [string, boolean, string])[] = [
  // IPv4 registry.
  ["192.0.0.9", true, "192.0.0.9/32 Port Control Protocol anycast (RFC 7723): reachable"],
  ["192.0.0.10", true, "192.0.0.10/32 TURN anycast (RFC 8155): reachable"],
  ["192.0.0.0", false, "192.0.0.0/29 IPv4 service continuity prefix"],
  ["192.0.0.8", false, "192.0.0.8/32 IPv4 dummy address"],
  ["192.0.0.11", false, "192.0.0.0/24 IETF protocol assignments"],
  ["192.0.0.170", false, "192.0.0.170/32 NAT64/DNS64 discovery"],
  ["192.0.0.171", false, "192.0.0.171/32 NAT64/DNS64 discovery"],
  ["192.31.196.1", true, "192.31.196.0/24 AS112-v4: reachable"],
  ["192.52.193.1", true, "192.52.193.0/24 AMT: reachable"],
  ["192.175.48.1", true, "192.175.48.0/24 direct delegation AS112: reachable"],
  // IPv6 registry.
  ["2001:1::1", true, "2001:1::1/128 Port Control Protocol anycast: reachable"],
  ["2001:1::2", true, "2001:1::2/128 TURN anycast: reachable"],
  ["2001:1::3", true, "2001:1::3/128 DNS-SD SRP anycast (RFC 9665): reachable"],
  ["2001:1::4", false, "2001::/23 IETF protocol assignments"],
  ["2001:1::1:1", false, "2001::/23 IETF protocol assignments"],
  ["2001::1", false, "2001::/32 TEREDO"],
  ["2001:2::1", false, "2001:2::/48 benchmarking"],
  ["2001:3::1", true, "2001:3::/32 AMT: reachable"],
  ["2001:3:ffff::1", true, "2001:3::/32 AMT: reachable"],
  ["2001:4:112::1", true, "2001:4:112::/48 AS112-v6: reachable"],
  ["2001:4:113::1", false, "2001::/23 IETF protocol assignments"],
  ["2001:10::1", false, "2001:10::/28 deprecated ORCHID"],
  ["2001:20::1", true, "2001:20::/28 ORCHIDv2: reachable"],
  ["2001:2f:ffff::1", true, "2001:20::/28 ORCHIDv2: reachable"],
  ["2001:30::1", true, "2001:30::/28 drone remote ID entity tags (RFC 9374): reachable"],
  ["2001:3f:ffff::1", true, "2001:30::/28 drone remote ID entity tags: reachable"],
  ["2001:40::1", false, "2001::/23 IETF protocol assignments"],
  ["2001:1ff:ffff::1", false, "2001::/23 IETF protocol assignments"],
  ["2620:4f:8000::1", true, "2620:4f:8000::/48 direct delegation AS112: reachable"],
  ["5f00::1", false, "5f00::/16 SRv6 SIDs (RFC 9602)"],
  ["100:0:0:1::1", false, "100:0:0:1::/64 dummy IPv6 prefix (RFC 9780)"],
  // RFC 8215 local-use NAT64 in its /96 (RFC 6052 §2.2): the IPv4 address inside decides.
  ["64:ff9b:1::808:808", true, "64:ff9b:1::/48 local-use NAT64, 8.8.8.8 inside"],
  ["64:ff9b:1::8.8.4.4", true, "64:ff9b:1::/48 local-use NAT64, 8.8.4.4 inside"],
  ["64:ff9b:1::a00:1", false, "64:ff9b:1::/48 local-use NAT64, 10.0.0.1 inside"],
  ["64:ff9b:1::7f00:1", false, "64:ff9b:1::/48 local-use NAT64, 127.0.0.1 inside"],
  ["64:ff9b:1::a9fe:a9fe", false, "64:ff9b:1::/48 local-use NAT64, 169.254.169.254 inside"],
  // Other prefix lengths inside the /48 put the IPv4 address elsewhere: unknown, not public.
  ["64:ff9b:1:1::808:808", false, "64:ff9b:1::/48 outside its zero /96"],
  ["64:ff9b:1:0:8:808:800::", false, "64:ff9b:1::/48 with a /64 layout"],
  ["64:ff9b:2::808:808", false, "64:ff9b::/16 beyond the two NAT64 prefixes"],
];

Deno.test("isPublicAddress follows the special-purpose registries' Globally Reachable", () => {
  for (const [address, expected, entry] of CASES) {
    assertEquals([address, entry, isPublicAddress(address)], [address, entry, expected]);
  }
});
