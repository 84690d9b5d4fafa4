/**
 * A real DNS server for outbound tests: dnsmasq on 127.0.0.1:<free port>, answering only from
 * a temporary config (no upstream, no /etc/hosts; every other name is NXDOMAIN). Started in the
 * foreground (tests/_helpers/spawned.ts), stopped by its PID. A spare port picked here can be
 * taken before dnsmasq binds it (another test's dnsmasq, a resolver's query socket): dnsmasq
 * then exits while the other program may answer on the port. So it is found ready only when it
 * answers a name of its own (a TXT record with a fresh token, which only this config holds),
 * and a start that is not ready is retried on another port, a bounded number of times.
 */
import dgram from "node:dgram";
import { spawn, stop } from "./spawned.ts";
import { findTool } from "./tools.ts";

/** Records the server answers. Names are written without the final dot. */
export interface DnsRecords {
  /**
   * MX records; `host: "."` is a null MX (RFC 7505). A host with octets outside letters,
   * digits, `-` and `.` (`[192.0.2.1]`, `x_y.test`) goes out as written, in wire form.
   */
  readonly mx?: readonly { name: string; host: string; preference: number }[];
  /** CNAME records: `name` is an alias of `target` (which this config must answer). */
  readonly cname?: readonly { name: string; target: string }[];
  /** A and AAAA records (one entry per name, any mix of IPv4 and IPv6 addresses). */
  readonly hosts?: readonly { name: string; addresses: readonly string[] }[];
  /** TXT records, each a list of character-strings (at most 255 bytes each). */
  readonly txt?: readonly { name: string; strings: readonly string[] }[];
  /** Names under `domain` are asked of `server` (`HOST#PORT`), whatever it answers. */
  readonly forward?: readonly { domain: string; server: string }[];
}

/** A running dnsmasq. */
export interface DnsServer {
  readonly ipAddr: string;
  readonly port: number;
  /** `HOST:PORT`, as `outbound.resolver` takes it. */
  readonly address: string;
  /** The last lines dnsmasq wrote (for failure messages). */
  logs(): string;
  stop(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

const READY_DEADLINE_MS = 10_000;
const MAX_START_ATTEMPTS = 5;
/** How long one readiness query waits for its answer. */
const PROBE_TIMEOUT_MS = 500;

/**
 * Starts dnsmasq with `records` on a spare port (`opts.port`: that port, tried once); retries
 * on another spare port when dnsmasq exits at start (the port was taken) or is not ready.
 */
export async function startDnsmasq(
  records: DnsRecords,
  opts: { readonly port?: number } = {},
): Promise<DnsServer> {
  const bin = await findTool("dnsmasq");
  if (bin === undefined) throw new Error("dnsmasq not installed");
  const attempts = opts.port === undefined ? MAX_START_ATTEMPTS : 1;
  const failures: string[] = [];
  for (let attempt = 0; attempt < attempts; attempt++) {
    const port = opts.port ?? await freeUdpPort();
    try {
      return await startOnce(bin, records, port);
    } catch (err) {
      failures.push(`port ${port}: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
  throw new Error(
    `dnsmasq did not get ready (${attempts} attempt${attempts === 1 ? "" : "s"}):\n` +
      failures.join("\n"),
  );
}

/** The dnsmasq config text for `records` on `port` (exported for the helper's own test). */
export function dnsmasqConfig(records: DnsRecords, port: number, readyToken?: string): string {
  const lines = [
    "no-resolv",
    "no-hosts",
    `port=${port}`,
    "listen-address=127.0.0.1",
    "bind-interfaces",
    // Every name is local: what the config does not hold is NXDOMAIN, never forwarded.
    "local=/#/",
  ];
  for (const mx of records.mx ?? []) {
    if (mx.host === ".") {
      // dnsmasq's mx-host cannot write the root as target: a raw MX RR (type 15) with
      // preference 0 and the root name (one zero byte).
      lines.push(`dns-rr=${mx.name},15,${hex16(mx.preference)}00`);
    } else if (!/^[A-Za-z0-9.-]+$/.test(mx.host)) {
      // Nor a target outside host-name syntax: a raw MX RR with the name in wire form.
      lines.push(`dns-rr=${mx.name},15,${hex16(mx.preference)}${wireName(mx.host)}`);
    } else {
      lines.push(`mx-host=${mx.name},${mx.host},${mx.preference}`);
    }
  }
  // One line per address: a host-record line keeps one IPv4 and one IPv6 address at most.
  for (const h of records.hosts ?? []) {
    for (const a of h.addresses) lines.push(`host-record=${h.name},${a}`);
  }
  for (const c of records.cname ?? []) lines.push(`cname=${c.name},${c.target}`);
  for (const t of records.txt ?? []) {
    lines.push(`txt-record=${t.name},${t.strings.map((s) => `"${s}"`).join(",")}`);
  }
  for (const f of records.forward ?? []) lines.push(`server=/${f.domain}/${f.server}`);
  if (readyToken !== undefined) lines.push(`txt-record=${readyName(readyToken)},"${readyToken}"`);
  return lines.join("\n") + "\n";
}

async function startOnce(bin: string, records: DnsRecords, port: number): Promise<DnsServer> {
  const dir = await Deno.makeTempDir({ prefix: "odmr-dnsmasq-" });
  const confPath = `${dir}/dnsmasq.conf`;
  const token = crypto.randomUUID();
  await Deno.writeTextFile(confPath, dnsmasqConfig(records, port, token));
  const args = [
    "--keep-in-foreground",
    `--conf-file=${confPath}`,
    "--log-facility=-",
    "--pid-file=",
  ];
  // Started as root, dnsmasq would switch to "nobody"; stay who the test runs as.
  if (Deno.uid() === 0) args.push("--user=root");
  const proc = spawn("dnsmasq", bin, args);
  let hasExited = false;
  proc.exited.then(() => hasExited = true);
  const output = () => proc.tail.join("\n");
  const stopIt = async () => {
    await stop(proc);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const server: DnsServer = {
    ipAddr: "127.0.0.1",
    port,
    address: `127.0.0.1:${port}`,
    logs: output,
    stop: stopIt,
    [Symbol.asyncDispose]: stopIt,
  };
  const deadline = Date.now() + READY_DEADLINE_MS;
  let seen = "no answer";
  while (Date.now() < deadline && !hasExited) {
    seen = await probe(port, token);
    // Only this dnsmasq knows the token; still running, so the port is its own.
    if (seen === "ready" && !hasExited) return server;
    await new Promise((r) => setTimeout(r, 50));
  }
  await stopIt();
  const why = hasExited ? "exited at start" : `not ready within ${READY_DEADLINE_MS} ms`;
  throw new Error(`dnsmasq ${why} (last probe: ${seen}): ${output().trim()}`);
}

/** The name only a dnsmasq started with `token` answers. */
function readyName(token: string): string {
  return `${token}.odmr-ready.test`;
}

/**
 * Asks 127.0.0.1:`port` for the ready name's TXT record: "ready" when the answer is `token`,
 * else what came back (an NXDOMAIN or another answer is another server, or not this config).
 */
async function probe(port: number, token: string): Promise<string> {
  try {
    const got = await Deno.resolveDns(readyName(token), "TXT", {
      nameServer: { ipAddr: "127.0.0.1", port },
      signal: AbortSignal.timeout(PROBE_TIMEOUT_MS),
    });
    return got.length === 1 && got[0]?.join("") === token
      ? "ready"
      : `answer ${JSON.stringify(got)}`;
  } catch (err) {
    return err instanceof Deno.errors.NotFound ? "NXDOMAIN" : String(err);
  }
}

/** A UDP port free right now (dnsmasq also takes TCP on it; a clash is retried). */
async function freeUdpPort(): Promise<number> {
  const sock = dgram.createSocket("udp4");
  await new Promise<void>((resolve, reject) => {
    sock.once("error", reject);
    sock.bind(0, "127.0.0.1", () => resolve());
  });
  const port = sock.address().port;
  await new Promise<void>((resolve) => sock.close(() => resolve()));
  return port;
}

/** `name` as DNS wire-form labels, in hex (dnsmasq's dns-rr data). */
function wireName(name: string): string {
  const labels = name.split(".").filter((l) => l !== "");
  const hex = (bytes: Uint8Array) =>
    [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  return labels.map((l) => {
    const bytes = new TextEncoder().encode(l);
    return bytes.length.toString(16).padStart(2, "0") + hex(bytes);
  }).join("") + "00";
}

function hex16(n: number): string {
  return n.toString(16).padStart(4, "0");
}
