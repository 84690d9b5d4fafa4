/**
 * Where mail for a domain goes (RFC 5321 §5.1): its MX hosts by preference (random order among
 * equal preferences, so load spreads as the domain intends), each with its addresses; without
 * MX records the domain itself (the implicit MX). A null MX (RFC 7505) is a permanent refusal.
 * An MX host written as an IP address is taken as that address, as Postfix does; one that is
 * neither that nor a host name (an address in brackets, a space) is a host that cannot exist.
 * Our own host among the MX hosts is discarded with every host of its preference or a higher
 * number; when that leaves none, the mail loops back to us (permanent, 5.4.6, as Postfix).
 * Addresses that are not public (loopback, private, link-local: `mx_public.ts`) are dropped unless
 * allowed; when that leaves no host, the mail fails for good (5.4.4), no connection is made.
 * So it does when no MX host has an address for good: each name does not exist (NXDOMAIN; Postfix:
 * "Host or domain name not found", 5.4.4) or exists without A and AAAA records (NODATA; Postfix:
 * "Host found but no data record", 5.4.4); a host whose lookup failed makes it temporary, and so
 * does our own host among them (a backup MX keeps the mail for its primary).
 * DNS failures other than "no such domain" or "no such records" are temporary: the caller
 * retries later. Deno reports those two and SERVFAIL/REFUSED alike, so a NotFound is asked
 * again by `dns_rcode.ts`, which reads the answer's RCODE; every such second query of one
 * lookup fits in 3 s together (a server that answered Deno and then went silent costs no more).
 */
import { isIP } from "../config/_ip.ts";
import { errorText } from "../errors.ts";
import { queryRcode, type RcodeServer, rcodeServers } from "./dns_rcode.ts";
import { isPublicAddress } from "./mx_public.ts";
import { isSelf, type OwnHost } from "./mx_self.ts";

export type { OwnHost } from "./mx_self.ts";

/** A DNS server to ask instead of the system's (`outbound.resolver`). */
export interface NameServer {
  readonly ipAddr: string;
  readonly port: number;
}

/** One host to try, with the addresses to connect to (IPv4 first, then IPv6). */
export interface MxHost {
  /** Host name without the final dot. */
  readonly name: string;
  readonly preference: number;
  readonly addresses: readonly string[];
}

/** The outcome of a lookup. `status` is the enhanced code for a DSN or a log line. */
export type MxResult =
  | { readonly kind: "hosts"; readonly hosts: readonly MxHost[]; readonly isImplicit: boolean }
  | {
    readonly kind: "permanent";
    readonly reason:
      | "null_mx"
      | "no_such_domain"
      | "no_such_host"
      | "no_host_address"
      | "invalid_domain"
      | "mx_loop"
      | "private_address";
    readonly status: string;
  }
  | {
    readonly kind: "temporary";
    readonly reason: "dns_error" | "no_addresses";
    readonly status: string;
    readonly detail: string;
  };

/** Lookup settings; every field has a default. */
export interface ResolveMxOptions {
  /** Default: the system's resolver. */
  readonly nameServer?: NameServer | undefined;
  /** Deadline of each DNS query; default 10 s. */
  readonly timeoutMs?: number;
  /** Random source in [0, 1) for ordering equal preferences; default Math.random. */
  readonly random?: () => number;
  /** This relay's names and addresses (RFC 5321 §5.1 loop avoidance); default: none known. */
  readonly self?: OwnHost | undefined;
  /** Keep loopback, private and link-local addresses (`outbound.allow_private_mx`); default false. */
  readonly allowPrivate?: boolean;
}

const DEFAULT_TIMEOUT_MS = 10_000;
/**
 * The second queries after NotFound answers (MX, then A and AAAA of the implicit MX or of the
 * MX hosts) of one lookup, together: they ask what the server just answered, so an answer comes
 * at once or not at all (README "Where it goes").
 */
const REQUERY_BUDGET_MS = 3_000;
/** RFC 5321 §5.1 bounds nothing, but a domain with hundreds of MX hosts is abuse. */
const MAX_MX_HOSTS = 20;

type RecordType = "MX" | "A" | "AAAA";
/** `not_found`: Deno's NotFound, which may be NXDOMAIN, NODATA, SERVFAIL or REFUSED. */
type Lookup<T> = { kind: "found"; records: T[] } | { kind: "not_found" } | { kind: "none" } | {
  kind: "error";
  detail: string;
};
/** `no_such_name`: the host name does not exist (NXDOMAIN for both families). */
type Addresses =
  | { kind: "found"; records: string[] }
  | { kind: "no_such_name" }
  | { kind: "error"; detail: string };
/** What a NotFound was: the name does not exist, it has no such records, or an error. */
type Meaning = "no_such_name" | { kind: "none" } | { kind: "error"; detail: string };
/** Asks again what a NotFound for `name`/`type` was (`notFoundMeaning`). */
type Requery = (name: string, type: RecordType) => Promise<Meaning>;

/** Resolves the hosts that take mail for `domain` (an A-label, lower case). */
export async function resolveMx(domain: string, opts: ResolveMxOptions = {}): Promise<MxResult> {
  if (!/^[a-z0-9.-]+$/.test(domain) || domain.startsWith(".") || domain.includes("..")) {
    return { kind: "permanent", reason: "invalid_domain", status: "5.1.2" };
  }
  const requery = notFoundMeaning(opts);
  const mx = await lookup<Deno.MxRecord>(domain, "MX", opts);
  if (mx.kind === "not_found") {
    const meaning = await requery(domain, "MX");
    if (meaning === "no_such_name") {
      return { kind: "permanent", reason: "no_such_domain", status: "5.1.2" };
    }
    if (meaning.kind === "error") return dnsError(meaning.detail);
  } else if (mx.kind === "error") {
    return dnsError(mx.detail);
  }
  if (mx.kind !== "found") {
    // No MX: the domain itself is the implicit MX with preference 0 (RFC 5321 §5.1).
    const addresses = await addressesOf(domain, opts, requery);
    if (addresses.kind === "error") return dnsError(addresses.detail);
    if (addresses.kind === "no_such_name" || addresses.records.length === 0) {
      return { kind: "permanent", reason: "no_such_domain", status: "5.1.2" };
    }
    if (isSelf(opts.self, domain, addresses.records)) return mxLoop();
    const usable = usableAddresses(addresses.records, opts);
    if (usable.length === 0) return privateAddress();
    return {
      kind: "hosts",
      hosts: [{ name: domain, preference: 0, addresses: usable }],
      isImplicit: true,
    };
  }
  // RFC 7505 §3: a domain that accepts no mail publishes one MX with the root as its host.
  if (mx.records.some((r) => r.exchange === "." || r.exchange === "")) {
    return { kind: "permanent", reason: "null_mx", status: "5.1.10" };
  }
  const all = orderByPreference(mx.records, opts.random ?? Math.random);
  const ordered = all.slice(0, MAX_MX_HOSTS);
  const found = await Promise.all(ordered.map((r) => {
    const name = stripDot(r.exchange);
    // A host that is an IP address ("MX 10 192.0.2.1."), where a host name belongs: as
    // Postfix (smtp_addr_one), it is taken as the address.
    if (isIP(name) !== 0) return { kind: "found", records: [name] } satisfies Addresses;
    // Not a host name ("[192.0.2.1]", a space, an underscore): Deno refuses to ask for it, with
    // an error that is not NotFound. Postfix refuses it as invalid (5.4.4): a host that
    // cannot exist, never a DNS failure to retry.
    if (!isHostName(name)) return { kind: "no_such_name" } satisfies Addresses;
    return addressesOf(name, opts, requery);
  }));
  // RFC 5321 §5.1: our own host and every host not more preferred than it are discarded. By
  // name among all records (the cut may have left ours out), by address among those looked up.
  let selfPreference = Infinity;
  for (const r of all) {
    if (isSelf(opts.self, stripDot(r.exchange), [])) {
      selfPreference = Math.min(selfPreference, r.preference);
    }
  }
  for (const [i, r] of ordered.entries()) {
    const a = found[i];
    const addresses = a?.kind === "found" ? a.records : [];
    if (isSelf(opts.self, stripDot(r.exchange), addresses)) {
      selfPreference = Math.min(selfPreference, r.preference);
    }
  }
  if (!ordered.some((r) => r.preference < selfPreference)) return mxLoop();
  const hosts: MxHost[] = [];
  let lastError: string | undefined;
  /** Hosts left out for their addresses alone (every one of them not public). */
  let privateHosts = 0;
  /** Hosts that exist without an address record (NODATA for A and AAAA). */
  let bareHosts = 0;
  let considered = 0;
  for (const [i, r] of ordered.entries()) {
    const a = found[i];
    if (a === undefined || r.preference >= selfPreference) continue;
    considered++;
    if (a.kind === "error") {
      lastError = a.detail;
      continue;
    }
    if (a.kind === "no_such_name") continue;
    if (a.records.length === 0) {
      bareHosts++;
      continue;
    }
    const usable = usableAddresses(a.records, opts);
    if (usable.length === 0) {
      privateHosts++;
      continue;
    }
    hosts.push({ name: stripDot(r.exchange), preference: r.preference, addresses: usable });
  }
  if (hosts.length === 0) {
    if (privateHosts === considered) return privateAddress();
    // Every host answered, none with a usable address: it does not exist (NXDOMAIN), exists
    // without an address record (NODATA) or is not public. RFC 5321 §5.1: "If MX records are
    // present, but none of them are usable, ... this situation MUST be reported as an error";
    // Postfix fails it with 5.4.4 (its DNS_NOTFOUND is NXDOMAIN and NODATA alike). Not when a
    // lookup failed (the next may answer), nor when we are a backup MX of the domain: we keep its
    // mail for a primary that may come back (Postfix: 4.4.4 "unable to find primary relay").
    const isBackup = selfPreference !== Infinity;
    if (!isBackup && lastError === undefined) {
      return bareHosts > 0
        ? { kind: "permanent", reason: "no_host_address", status: "5.4.4" }
        : { kind: "permanent", reason: "no_such_host", status: "5.4.4" };
    }
    return lastError !== undefined ? dnsError(lastError) : {
      kind: "temporary",
      reason: "no_addresses",
      status: "4.4.3",
      detail: "no MX host more preferred than this relay has an address",
    };
  }
  return { kind: "hosts", hosts, isImplicit: false };
}

/**
 * Sorts by preference (lowest first) and shuffles each run of equal preference
 * (RFC 5321 §5.1: "randomize them to spread the load").
 */
export function orderByPreference(
  records: readonly Deno.MxRecord[],
  random: () => number,
): Deno.MxRecord[] {
  const sorted = [...records].sort((a, b) => a.preference - b.preference);
  let start = 0;
  while (start < sorted.length) {
    let end = start + 1;
    while (end < sorted.length && sorted[end]?.preference === sorted[start]?.preference) end++;
    // Fisher-Yates within [start, end).
    for (let i = end - 1; i > start; i--) {
      const j = start + Math.floor(random() * (i - start + 1));
      const tmp = sorted[i] as Deno.MxRecord;
      sorted[i] = sorted[j] as Deno.MxRecord;
      sorted[j] = tmp;
    }
    start = end;
  }
  return sorted;
}

async function addressesOf(
  name: string,
  opts: ResolveMxOptions,
  requery: Requery,
): Promise<Addresses> {
  const [v4, v6] = await Promise.all([
    lookup<string>(name, "A", opts),
    lookup<string>(name, "AAAA", opts),
  ]);
  const records: string[] = [];
  for (const r of [v4, v6]) if (r.kind === "found") records.push(...r.records);
  // An answer for one family is enough; an error matters only when nothing was found.
  if (records.length > 0) return { kind: "found", records };
  // Neither family answered: each NotFound is asked again for what it really was.
  const settled = await Promise.all([
    v4.kind === "not_found" ? requery(name, "A") : v4,
    v6.kind === "not_found" ? requery(name, "AAAA") : v6,
  ]);
  for (const r of settled) {
    if (r !== "no_such_name" && r.kind === "error") return r;
  }
  // NXDOMAIN for both: the name does not exist (one that exists without addresses may get some).
  if (settled.every((r) => r === "no_such_name")) return { kind: "no_such_name" };
  return { kind: "found", records };
}

async function lookup<T>(
  name: string,
  type: RecordType,
  opts: ResolveMxOptions,
): Promise<Lookup<T>> {
  const options: Deno.ResolveDnsOptions = {
    signal: AbortSignal.timeout(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS),
  };
  if (opts.nameServer !== undefined) options.nameServer = { ...opts.nameServer };
  try {
    // The overloads of resolveDns differ by record type; the caller names T to match `type`.
    const records = await Deno.resolveDns(name, type as "A", options) as unknown as T[];
    return records.length === 0 ? { kind: "none" } : { kind: "found", records };
  } catch (err) {
    // NXDOMAIN, no records of this type, SERVFAIL and REFUSED all come as NotFound.
    if (err instanceof Deno.errors.NotFound) return { kind: "not_found" };
    return {
      kind: "error",
      detail: `${type} ${name}: ${errorText(err)}`,
    };
  }
}

/**
 * For one lookup: what Deno's NotFound for `name`/`type` was, asked again of the servers Deno
 * asked: the name does not exist, it has no such records, or an error (anything else: a
 * temporary failure). All of the lookup's second queries share one deadline, which starts with
 * the first (`REQUERY_BUDGET_MS`, or the query deadline when shorter).
 */
function notFoundMeaning(opts: ResolveMxOptions): Requery {
  let servers: Promise<RcodeServer[] | string> | undefined;
  let deadline: number | undefined;
  return async (name, type) => {
    deadline ??= Date.now() + Math.min(opts.timeoutMs ?? DEFAULT_TIMEOUT_MS, REQUERY_BUDGET_MS);
    servers ??= rcodeServers(opts.nameServer);
    const list = await servers;
    if (typeof list === "string") return { kind: "error", detail: `${type} ${name}: ${list}` };
    const leftMs = deadline - Date.now();
    if (leftMs <= 0) {
      return { kind: "error", detail: `${type} ${name}: no time left to ask again` };
    }
    const v = await queryRcode(name, type, list, leftMs);
    if (v.kind === "no_such_name") return "no_such_name";
    if (v.kind === "no_records") return { kind: "none" };
    return { kind: "error", detail: `${type} ${name}: ${v.detail}` };
  };
}

function dnsError(detail: string): MxResult {
  return { kind: "temporary", reason: "dns_error", status: "4.4.3", detail };
}

/** RFC 3463 X.4.6 "routing loop detected"; Postfix: "mail for X loops back to myself". */
function mxLoop(): MxResult {
  return { kind: "permanent", reason: "mx_loop", status: "5.4.6" };
}

/** RFC 3463 X.4.4 "unable to route": the domain's mail servers are not on the Internet. */
function privateAddress(): MxResult {
  return { kind: "permanent", reason: "private_address", status: "5.4.4" };
}

function usableAddresses(addresses: readonly string[], opts: ResolveMxOptions): string[] {
  return opts.allowPrivate === true ? [...addresses] : addresses.filter(isPublicAddress);
}

/**
 * RFC 1123 §2.1 host-name syntax (RFC 5321 §2.3.5): labels of letters, digits and inner
 * hyphens, each 1-63 octets, 253 in all. Deno.resolveDns writes other octets escaped (`\[`).
 */
function isHostName(name: string): boolean {
  return name.length <= 253 &&
    name.split(".").every((l) => /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(l));
}

function stripDot(name: string): string {
  return (name.endsWith(".") ? name.slice(0, -1) : name).toLowerCase();
}
