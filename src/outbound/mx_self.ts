/**
 * Who "we" are among a domain's MX hosts (RFC 5321 §5.1 loop avoidance): a host is ours when its
 * name is one of our names (`hostname`, `outbound.helo`, a listener's host name) or one of its
 * addresses is an address a listener of ours is bound to (wildcard listeners name none).
 */
import { isIP } from "../config/_ip.ts";

/** This relay's names (lower case, no final dot) and the addresses it listens on. */
export interface OwnHost {
  readonly names: readonly string[];
  readonly addresses: readonly string[];
}

/** True when the host `name` with `addresses` is this relay. */
export function isSelf(
  self: OwnHost | undefined,
  name: string,
  addresses: readonly string[],
): boolean {
  if (self === undefined) return false;
  const host = plainName(name);
  if (self.names.some((n) => plainName(n) === host)) return true;
  const ours = new Set(self.addresses.map(canonicalIp));
  return addresses.some((a) => ours.has(canonicalIp(a)));
}

/**
 * Our names and addresses from the config: `names` as given, and the hosts of the listeners
 * (`listen`): an IP address (not a wildcard) is an address of ours, a name is a name of ours.
 */
export function ownHost(
  names: readonly string[],
  listen: readonly { readonly host: string }[],
): OwnHost {
  const ownNames = new Set(names.map(plainName).filter((n) => n !== ""));
  const addresses = new Set<string>();
  for (const { host } of listen) {
    const h = host.replace(/^\[(.*)\]$/, "$1");
    if (isIP(h) === 0) {
      if (h !== "" && h !== "*") ownNames.add(plainName(h));
      continue;
    }
    const ip = canonicalIp(h);
    if (ip !== "0.0.0.0" && ip !== canonicalIp("::")) addresses.add(ip);
  }
  return { names: [...ownNames], addresses: [...addresses] };
}

function plainName(name: string): string {
  return (name.endsWith(".") ? name.slice(0, -1) : name).toLowerCase();
}

/**
 * One spelling per address: IPv4 as is (an IPv4-mapped IPv6 address as its IPv4), IPv6 as eight
 * groups of four lower-case hex digits, without a zone. Anything else is returned lower-cased.
 */
export function canonicalIp(address: string): string {
  const a = address.toLowerCase().replace(/%.*$/, "");
  if (isIP(a) === 4) return a;
  if (isIP(a) !== 6) return a;
  let groups: string[];
  let tail: string[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(a);
  let head = a;
  if (v4 !== null) {
    const octets = (v4[1] as string).split(".").map(Number);
    tail = [
      (((octets[0] ?? 0) << 8) | (octets[1] ?? 0)).toString(16),
      (((octets[2] ?? 0) << 8) | (octets[3] ?? 0)).toString(16),
    ];
    head = a.slice(0, -(v4[1] as string).length);
    if (head.endsWith(":") && !head.endsWith("::")) head = head.slice(0, -1);
  }
  if (head.includes("::")) {
    const [left, right] = head.split("::") as [string, string];
    const l = left === "" ? [] : left.split(":");
    const r = right === "" ? [] : right.split(":");
    const fill = 8 - tail.length - l.length - r.length;
    groups = [...l, ...Array<string>(Math.max(0, fill)).fill("0"), ...r, ...tail];
  } else {
    groups = [...(head === "" ? [] : head.split(":")), ...tail];
  }
  const full = groups.map((g) => g.padStart(4, "0")).join(":");
  // ::ffff:a.b.c.d is the IPv4 address a.b.c.d.
  const mapped = /^0000:0000:0000:0000:0000:ffff:([0-9a-f]{4}):([0-9a-f]{4})$/.exec(full);
  if (mapped !== null) {
    const hi = parseInt(mapped[1] as string, 16);
    const lo = parseInt(mapped[2] as string, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return full;
}
