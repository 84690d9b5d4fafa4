/**
 * A real DNS server for outbound tests: dnsmasq on 127.0.0.1:<free port>, answering only from
 * a temporary config (no upstream, no /etc/hosts; every other name is NXDOMAIN). Started in the
 * foreground (tests/_helpers/spawned.ts), found ready by querying it (bounded), stopped by its
 * PID.
 */
import dgram from "node:dgram";
import { spawn, stop } from "./spawned.ts";
import { findTool } from "./tools.ts";

/** Records the server answers. Names are written without the final dot. */
export interface DnsRecords {
  /** MX records; `host: "."` is a null MX (RFC 7505). */
  readonly mx?: readonly { name: string; host: string; preference: number }[];
  /** A and AAAA records (one entry per name, any mix of IPv4 and IPv6 addresses). */
  readonly hosts?: readonly { name: string; addresses: readonly string[] }[];
  /** TXT records, each a list of character-strings (at most 255 bytes each). */
  readonly txt?: readonly { name: string; strings: readonly string[] }[];
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

/** Starts dnsmasq with `records`; retries on another port if the chosen one was taken. */
export async function startDnsmasq(records: DnsRecords): Promise<DnsServer> {
  const bin = await findTool("dnsmasq");
  if (bin === undefined) throw new Error("dnsmasq not installed");
  let lastError: unknown;
  for (let attempt = 0; attempt < MAX_START_ATTEMPTS; attempt++) {
    try {
      return await startOnce(bin, records);
    } catch (err) {
      lastError = err;
    }
  }
  throw new Error(`dnsmasq did not start: ${String(lastError)}`);
}

/** The dnsmasq config text for `records` on `port` (exported for the helper's own test). */
export function dnsmasqConfig(records: DnsRecords, port: number): string {
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
    } else {
      lines.push(`mx-host=${mx.name},${mx.host},${mx.preference}`);
    }
  }
  for (const h of records.hosts ?? []) lines.push(`host-record=${h.name},${h.addresses.join(",")}`);
  for (const t of records.txt ?? []) {
    lines.push(`txt-record=${t.name},${t.strings.map((s) => `"${s}"`).join(",")}`);
  }
  return lines.join("\n") + "\n";
}

async function startOnce(bin: string, records: DnsRecords): Promise<DnsServer> {
  const port = await freeUdpPort();
  const dir = await Deno.makeTempDir({ prefix: "odmr-dnsmasq-" });
  const confPath = `${dir}/dnsmasq.conf`;
  await Deno.writeTextFile(confPath, dnsmasqConfig(records, port));
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
  while (Date.now() < deadline) {
    if (hasExited) {
      await stopIt();
      throw new Error(`dnsmasq exited at start: ${output().trim()}`);
    }
    if (await answers(port)) return server;
    await new Promise((r) => setTimeout(r, 50));
  }
  await stopIt();
  throw new Error(`dnsmasq did not answer within ${READY_DEADLINE_MS} ms: ${output().trim()}`);
}

/** True once the server answers a query (NXDOMAIN is an answer; a timeout is not). */
async function answers(port: number): Promise<boolean> {
  try {
    await Deno.resolveDns("ready.invalid", "A", {
      nameServer: { ipAddr: "127.0.0.1", port },
      signal: AbortSignal.timeout(500),
    });
    return true;
  } catch (err) {
    return err instanceof Deno.errors.NotFound;
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

function hex16(n: number): string {
  return n.toString(16).padStart(4, "0");
}
