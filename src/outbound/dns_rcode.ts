/**
 * What a DNS server really answered when `Deno.resolveDns` says NotFound: Deno reports NXDOMAIN,
 * an answer without records (NODATA), SERVFAIL and REFUSED with the same error and text, but
 * only the first two say anything about the name (RFC 2308); the others are the server's trouble
 * and must be retried. So the same question is asked again here, once, over UDP (RFC 1035
 * §4.1), to the servers Deno asked (`outbound.resolver`, else the `nameserver`s of
 * /etc/resolv.conf, at most 3 as resolv.conf(5) uses), all at once, and the header's RCODE read:
 * the first answer that says NXDOMAIN or NODATA decides; only when every server answered
 * SERVFAIL or the like, or none answered by the deadline, nothing is known. Everything is
 * bounded: one socket per server, one deadline, answers of at most 512 octets (no EDNS is
 * offered), the ID, the source and the question must match; anything else is ignored.
 */
import type dgram from "node:dgram";
import { errorText } from "../errors.ts";
import { isIP } from "../config/_ip.ts";

/** A DNS server over UDP. */
export interface RcodeServer {
  readonly ipAddr: string;
  readonly port: number;
}

/** What the answer means for the name. */
export type RcodeVerdict =
  /** NXDOMAIN (RCODE 3): the name does not exist. */
  | { readonly kind: "no_such_name" }
  /** NOERROR without records of the type asked (a CNAME alone counts as none). */
  | { readonly kind: "no_records" }
  /** SERVFAIL, REFUSED, no answer in time, an answer we cannot read: nothing is known. */
  | { readonly kind: "unknown"; readonly detail: string };

export type RcodeType = "MX" | "A" | "AAAA";

const TYPE_CODES: Readonly<Record<RcodeType, number>> = { A: 1, MX: 15, AAAA: 28 };
const CLASS_IN = 1;
const TYPE_CNAME = 5;
const HEADER_OCTETS = 12;
/** RFC 1035 §4.2.1: without EDNS an answer over UDP is at most 512 octets. */
export const MAX_ANSWER_OCTETS = 512;
/** RFC 1035 §2.3.4. */
const MAX_NAME_OCTETS = 255;
const MAX_LABEL_OCTETS = 63;
/** Datagrams that are not our answer (stray, forged, late) before we stop listening. */
const MAX_IGNORED = 32;
const RCODE_NAMES: Readonly<Record<number, string>> = {
  1: "FORMERR",
  2: "SERVFAIL",
  4: "NOTIMP",
  5: "REFUSED",
};
const DNS_PORT = 53;
const RESOLV_CONF = "/etc/resolv.conf";
/** resolv.conf(5) MAXNS: the name servers a resolver uses. */
const MAX_NAME_SERVERS = 3;
/** Enough for any real resolv.conf; a longer file is read only this far. */
const MAX_RESOLV_CONF_OCTETS = 64 * 1024;

/**
 * Asks `servers` (all at once) for `type` records of `name` and reads the RCODE of their
 * answers: the first that says something about the name decides. Never throws; resolves within
 * about `timeoutMs` (each query is sent again once halfway).
 */
export async function queryRcode(
  name: string,
  type: RcodeType,
  servers: RcodeServer | readonly RcodeServer[],
  timeoutMs: number,
): Promise<RcodeVerdict> {
  const qtype = TYPE_CODES[type];
  const qname = encodeName(name);
  if (typeof qname === "string") return { kind: "unknown", detail: qname };
  const list: readonly RcodeServer[] = "ipAddr" in servers ? [servers] : servers;
  if (list.length === 0) return { kind: "unknown", detail: "no name server to ask" };
  // Loaded here, at the first re-query, not at start-up: an idle serve does without node:dgram
  // (a module built into Deno: nothing is read from disk for it).
  const udp = (await import("node:dgram")).default;
  const done = new AbortController();
  const asked = list.map((server) => askOne(udp, server, qname, qtype, timeoutMs, done.signal));
  try {
    return await new Promise<RcodeVerdict>((resolve) => {
      const details: string[] = [];
      let left = asked.length;
      for (const [i, verdict] of asked.entries()) {
        void verdict.then((v) => {
          if (v.kind !== "unknown") return resolve(v);
          details[i] = v.detail;
          if (--left === 0) resolve({ kind: "unknown", detail: details.join("; ") });
        });
      }
    });
  } finally {
    // The others stop listening; their sockets are closed before this returns.
    done.abort();
    await Promise.all(asked);
  }
}

/** One server's verdict (see `queryRcode`); `abandon` stops waiting for it. */
async function askOne(
  udp: typeof dgram,
  server: RcodeServer,
  qname: Uint8Array,
  qtype: number,
  timeoutMs: number,
  abandon: AbortSignal,
): Promise<RcodeVerdict> {
  const id = crypto.getRandomValues(new Uint16Array(1))[0] as number;
  const query = buildQuery(id, qname, qtype);
  const isV6 = isIP(server.ipAddr) === 6;
  const socket = udp.createSocket(isV6 ? "udp6" : "udp4");
  let ignored = 0;
  const timers: ReturnType<typeof setTimeout>[] = [];
  let onAbandon = () => {};
  try {
    return await new Promise<RcodeVerdict>((resolve) => {
      onAbandon = () => resolve({ kind: "unknown", detail: "another server answered" });
      abandon.addEventListener("abort", onAbandon);
      const fail = (err: unknown) =>
        resolve({ kind: "unknown", detail: `query to ${where(server)}: ${errorText(err)}` });
      const send = () => {
        try {
          socket.send(query, server.port, server.ipAddr, (err) => err && fail(err));
        } catch (err) {
          fail(err); // thrown at once (a bad address): also from the timer, never uncaught
        }
      };
      socket.on("error", fail);
      socket.on("message", (msg: Uint8Array, rinfo: { address: string; port: number }) => {
        const fromServer = rinfo.port === server.port && sameAddress(rinfo.address, server.ipAddr);
        const verdict = fromServer ? readAnswer(msg, id, qname, qtype) : undefined;
        if (verdict !== undefined) {
          resolve(verdict);
        } else if (++ignored >= MAX_IGNORED) {
          resolve({ kind: "unknown", detail: `no readable answer from ${where(server)}` });
        }
      });
      timers.push(setTimeout(send, timeoutMs / 2));
      timers.push(setTimeout(() => {
        resolve({ kind: "unknown", detail: `no answer from ${where(server)} in ${timeoutMs} ms` });
      }, timeoutMs));
      send();
    });
  } finally {
    abandon.removeEventListener("abort", onAbandon);
    for (const t of timers) clearTimeout(t);
    await new Promise<void>((resolve) => {
      try {
        socket.close(() => resolve());
      } catch {
        resolve(); // never bound: nothing to close
      }
    });
  }
}

/**
 * The verdict of `msg` when it answers our question (`id`, `qname`, `qtype`), else undefined
 * (to be ignored). Exported for the tests.
 */
export function readAnswer(
  msg: Uint8Array,
  id: number,
  qname: Uint8Array,
  qtype: number,
): RcodeVerdict | undefined {
  if (msg.length < HEADER_OCTETS || msg.length > MAX_ANSWER_OCTETS) return undefined;
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const flags = view.getUint16(2);
  const isResponse = (flags & 0x8000) !== 0;
  const opcode = (flags >> 11) & 0xf;
  if (view.getUint16(0) !== id || !isResponse || opcode !== 0 || view.getUint16(4) !== 1) {
    return undefined;
  }
  // The question must be ours (RFC 5452 §9.1): the name (case-insensitive), type and class.
  const qEnd = HEADER_OCTETS + qname.length;
  if (msg.length < qEnd + 4) return undefined;
  for (let i = 0; i < qname.length; i++) {
    if (lower(msg[HEADER_OCTETS + i] as number) !== lower(qname[i] as number)) return undefined;
  }
  if (view.getUint16(qEnd) !== qtype || view.getUint16(qEnd + 2) !== CLASS_IN) return undefined;
  const rcode = flags & 0xf;
  if ((flags & 0x0200) !== 0) return { kind: "unknown", detail: "answer truncated (TC)" };
  if (rcode === 3) return { kind: "no_such_name" };
  if (rcode !== 0) {
    return { kind: "unknown", detail: `answer ${RCODE_NAMES[rcode] ?? `RCODE ${rcode}`}` };
  }
  // NOERROR: records of the type asked mean the two lookups disagree (the zone changed
  // meanwhile, or Deno's resolver failed otherwise): nothing is known, try again later.
  const types = answerTypes(msg, qEnd + 4, view.getUint16(6));
  if (types === undefined) return { kind: "unknown", detail: "answer malformed" };
  if (types.some((t) => t !== TYPE_CNAME)) {
    return { kind: "unknown", detail: "records found on the second query" };
  }
  return { kind: "no_records" };
}

/** The TYPE of each of `count` answer records from `at`, or undefined when they overrun. */
function answerTypes(msg: Uint8Array, at: number, count: number): number[] | undefined {
  const view = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
  const types: number[] = [];
  let pos = at;
  for (let n = 0; n < count; n++) {
    // The owner name: labels up to a zero octet, or up to a compression pointer (2 octets).
    for (;;) {
      const len = msg[pos];
      if (len === undefined) return undefined;
      if ((len & 0xc0) === 0xc0) {
        pos += 2;
        break;
      }
      if ((len & 0xc0) !== 0) return undefined;
      pos += 1 + len;
      if (len === 0) break;
    }
    if (pos + 10 > msg.length) return undefined;
    types.push(view.getUint16(pos));
    pos += 10 + view.getUint16(pos + 8);
    if (pos > msg.length) return undefined;
  }
  return types;
}

/** `name` in wire form (labels, then the root), or why it cannot be asked. */
export function encodeName(name: string): Uint8Array | string {
  const trimmed = name.endsWith(".") ? name.slice(0, -1) : name;
  const labels = trimmed === "" ? [] : trimmed.split(".");
  const out: number[] = [];
  for (const label of labels) {
    const bytes = new TextEncoder().encode(label);
    if (bytes.length === 0 || bytes.length > MAX_LABEL_OCTETS) return `bad DNS name "${name}"`;
    out.push(bytes.length, ...bytes);
  }
  out.push(0);
  if (out.length > MAX_NAME_OCTETS) return `DNS name too long "${name}"`;
  return Uint8Array.from(out);
}

function buildQuery(id: number, qname: Uint8Array, qtype: number): Uint8Array {
  const q = new Uint8Array(HEADER_OCTETS + qname.length + 4);
  const view = new DataView(q.buffer);
  view.setUint16(0, id);
  view.setUint16(2, 0x0100); // a standard query, recursion desired
  view.setUint16(4, 1); // one question
  q.set(qname, HEADER_OCTETS);
  view.setUint16(HEADER_OCTETS + qname.length, qtype);
  view.setUint16(HEADER_OCTETS + qname.length + 2, CLASS_IN);
  return q;
}

/**
 * The servers Deno asked: `configured` (`outbound.resolver`), else the first 3 `nameserver`s of
 * /etc/resolv.conf; a string says why there is none.
 */
export async function rcodeServers(
  configured: RcodeServer | undefined,
  path = RESOLV_CONF,
): Promise<RcodeServer[] | string> {
  if (configured !== undefined) return [configured];
  let text: string;
  try {
    using file = await Deno.open(path);
    const buf = new Uint8Array(MAX_RESOLV_CONF_OCTETS);
    let filled = 0;
    for (;;) {
      const n = await file.read(buf.subarray(filled));
      if (n === null || n === 0) break;
      filled += n;
      if (filled === buf.length) break;
    }
    text = new TextDecoder().decode(buf.subarray(0, filled));
  } catch (err) {
    // Deno run without --allow-read=/etc/resolv.conf lands here (README "Permissions").
    return `cannot read ${path} (set outbound.resolver): ${errorText(err)}`;
  }
  const found = nameServers(text);
  return found.length === 0
    ? `no nameserver in ${path}`
    : found.map((ipAddr) => ({ ipAddr, port: DNS_PORT }));
}

/** The addresses of the first 3 valid `nameserver` lines of a resolv.conf text (resolv.conf(5)). */
export function nameServers(text: string): string[] {
  const found: string[] = [];
  for (const line of text.split("\n")) {
    const m = /^\s*nameserver\s+(\S+)/.exec(line);
    if (m === null) continue;
    const addr = m[1] as string;
    if (isIP(addr) !== 0 && found.push(addr) === MAX_NAME_SERVERS) break;
  }
  return found;
}

function sameAddress(a: string, b: string): boolean {
  const strip = (s: string) => s.toLowerCase().replace(/^::ffff:(?=\d+\.)/, "");
  return strip(a) === strip(b);
}

function where(server: RcodeServer): string {
  return isIP(server.ipAddr) === 6
    ? `[${server.ipAddr}]:${server.port}`
    : `${server.ipAddr}:${server.port}`;
}

function lower(octet: number): number {
  return octet >= 0x41 && octet <= 0x5a ? octet | 0x20 : octet;
}
