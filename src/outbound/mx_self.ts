/**
 * Who "we" are among a domain's MX hosts (RFC 5321 §5.1 loop avoidance): a host is ours when its
 * name is one of our names (`hostname`, `outbound.helo`, a listener's host name) or one of its
 * addresses is one where we take mail, as Postfix's inet_interfaces and proxy_interfaces: a
 * listener's own address, every address of the host's interfaces while the MX listener
 * (`smtp.listen`) is on a wildcard address (0.0.0.0, ::), and the addresses that reach us through NAT or a proxy
 * (`outbound.own_addresses`: a cloud VPS's public address is on none of its interfaces).
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

/** Where else we take mail (`ownHost`). */
export interface OtherAddresses {
  /** `outbound.own_addresses`: reached through NAT or a proxy. */
  readonly natted?: readonly string[];
  /** The host's interface addresses (`interfaceAddresses`), used while a listener is a wildcard. */
  readonly interfaces?: () => readonly string[];
}

/**
 * Our names and addresses from the config: `names` as given, and the hosts of the listeners
 * (`listen`): an IP address is an address of ours, a name is a name of ours; and `other.natted`.
 * With `other.interfaces` (the caller's choice: serve's MX listener on a wildcard address) and a
 * wildcard among `listen`, every interface address, read whenever `addresses` is read.
 */
export function ownHost(
  names: readonly string[],
  listen: readonly { readonly host: string }[],
  other: OtherAddresses = {},
): OwnHost {
  const ownNames = new Set(names.map(plainName).filter((n) => n !== ""));
  const addresses = new Set<string>((other.natted ?? []).map(canonicalIp));
  for (const { host } of listen) {
    const h = host.replace(/^\[(.*)\]$/, "$1");
    if (isWildcard(h)) continue;
    if (isIP(h) === 0) ownNames.add(plainName(h));
    else addresses.add(canonicalIp(h));
  }
  const fixed = [...addresses];
  const interfaces = listensEverywhere(listen) ? other.interfaces : undefined;
  if (interfaces === undefined) return { names: [...ownNames], addresses: fixed };
  return {
    names: [...ownNames],
    get addresses() {
      return [...fixed, ...interfaces()];
    },
  };
}

/** Whether a listener is on a wildcard address (all of the host's addresses). */
export function listensEverywhere(listen: readonly { readonly host: string }[]): boolean {
  return listen.some(({ host }) => isWildcard(host.replace(/^\[(.*)\]$/, "$1")));
}

function isWildcard(host: string): boolean {
  if (host === "" || host === "*") return true;
  const ip = canonicalIp(host);
  return isIP(host) !== 0 && (ip === "0.0.0.0" || ip === canonicalIp("::"));
}

/** How often `interfaceAddresses` reads the interfaces again, at most (addresses may change). */
export const INTERFACES_MAX_AGE_MS = 60_000;

/**
 * The addresses of the host's network interfaces, read now and again when asked after
 * INTERFACES_MAX_AGE_MS. Deno.networkInterfaces() needs `--allow-sys=networkInterfaces` (a
 * missing grant throws here, at the first read: serve does not start, README "Permissions") and
 * a netlink socket (systemd's RestrictAddressFamilies must allow AF_NETLINK); any other failure
 * goes to `onError` (at the first read, and at the first of a run of failures) and the last
 * addresses read are kept (none at first).
 */
export function interfaceAddresses(opts: {
  readonly onError: (err: unknown) => void;
  readonly read?: () => readonly { readonly address: string }[];
  readonly now?: () => number;
}): () => readonly string[] {
  const read = opts.read ?? (() => Deno.networkInterfaces());
  const now = opts.now ?? (() => performance.now());
  let known: readonly string[] = [];
  let readAt = -Infinity;
  let isFailing = false;
  const refresh = () => {
    readAt = now();
    try {
      known = [...new Set(read().map((i) => canonicalIp(i.address)))];
      isFailing = false;
    } catch (err) {
      if (err instanceof Deno.errors.NotCapable) throw err;
      if (!isFailing) opts.onError(err);
      isFailing = true;
    }
  };
  refresh();
  return () => {
    if (now() - readAt >= INTERFACES_MAX_AGE_MS) refresh();
    return known;
  };
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
