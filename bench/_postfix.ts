// The private Postfix the benchmarks compare with: the runner of the tests
// (tests/_helpers/postfix.ts: own config, queue and data directories in a temp dir, stopped by
// `postfix -c DIR stop`) with smtpd on a spare 127.0.0.1 port, mail for bench.example (and any
// further domains) held on arrival (HOLD) so that only queue ingest is measured, and released
// to an smtp-sink on demand.

import {
  postfixUnavailable,
  type PrivatePostfix as Instance,
  startPrivatePostfix,
} from "../tests/_helpers/postfix.ts";
import { sleep } from "./_proc.ts";

const QUEUES = ["maildrop", "incoming", "active", "deferred", "hold"] as const;

/** Options for `PrivatePostfix.start`. */
export interface PostfixOptions {
  /** Parent temp dir; the instance lives in a subdirectory. */
  readonly dir: string;
  /** 127.0.0.1 port for smtpd (default: a spare one the helper picks, alone on it). */
  readonly smtpPort?: number;
  /** Port of the smtp-sink that the domains are relayed to. */
  readonly relayPort: number;
  /** Address of that smtp-sink (default 127.0.0.1). */
  readonly relayHost?: string;
  /** The relayed domain. */
  readonly domain: string;
  /** Further domains relayed (and held) the same way. */
  readonly moreDomains?: readonly string[];
}

/** A running private Postfix (master) instance, as the benchmarks drive it. */
export class PrivatePostfix {
  readonly smtpPort: number;
  readonly #pf: Instance;

  private constructor(pf: Instance, smtpPort: number) {
    this.#pf = pf;
    this.smtpPort = smtpPort;
  }

  /** Why Postfix cannot run here, or undefined if it can. */
  static unavailable(): Promise<string | undefined> {
    return postfixUnavailable();
  }

  /** Starts the instance (`postfix check`, `postfix start`) relaying and holding the domains. */
  static async start(opts: PostfixOptions): Promise<PrivatePostfix> {
    const pf = await startPrivatePostfix(benchSettings(opts), {
      parentDir: opts.dir,
      smtpdPort: opts.smtpPort ?? "spare",
    });
    return new PrivatePostfix(pf, pf.smtpdPort ?? 0);
  }

  /** Number of queue files (maildrop, incoming, active, deferred, hold). */
  queueCount(): Promise<number> {
    return this.#pf.queueFiles(QUEUES);
  }

  /** Number of queue files in the hold queue. */
  heldCount(): Promise<number> {
    return this.#pf.queueFiles(["hold"]);
  }

  /** Waits until `heldCount()` reaches `n` (polls every 50 ms, up to `timeoutMs`). */
  async waitHeld(n: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await this.heldCount()) >= n) return;
      await sleep(50);
    }
    throw new Error(`postfix: fewer than ${n} held messages after ${timeoutMs} ms`);
  }

  /**
   * Once `n` messages are held: releases them all and asks for immediate delivery
   * (`postsuper -H`, `postqueue -f`), then waits until the queue is empty (polls every 20 ms).
   * The seconds from the release to the empty queue, or undefined after `timeoutMs`.
   */
  async timedRelease(n: number, timeoutMs: number): Promise<number | undefined> {
    await this.waitHeld(n, 30_000);
    const t0 = performance.now();
    await this.#pf.postsuper("-H", "ALL");
    await this.#pf.flush();
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if ((await this.queueCount()) === 0) return (performance.now() - t0) / 1000;
      await sleep(20);
    }
    return undefined;
  }

  /** Stops master (`postfix stop`) and removes the instance; safe to call twice. */
  stop(): Promise<void> {
    return this.#pf.stop();
  }
}

/** main.cf beyond the instance's own lines: relay the domains to the sink, hold on arrival. */
function benchSettings(opts: PostfixOptions): Record<string, string> {
  const domains = [opts.domain, ...(opts.moreDomains ?? [])];
  const nexthop = `smtp:[${opts.relayHost ?? "127.0.0.1"}]:${opts.relayPort}`;
  const transport = domains.map((d) => `${d}=${nexthop}`).join(", ");
  const hold = domains.map((d) => `${d}=HOLD`).join(", ");
  return {
    "myhostname": "bench.localdomain",
    "mydomain": "localdomain",
    "myorigin": "$myhostname",
    "mynetworks": "127.0.0.0/8",
    "inet_interfaces": "127.0.0.1",
    "relay_domains": domains.join(", "),
    "transport_maps": `inline:{ ${transport} }`,
    // HOLD on arrival: cleanup writes the queue file (fsynced) into hold/, qmgr never sees it,
    // so smtp-source's timing is pure queue ingest. timedRelease() moves it on for the drain.
    "smtpd_recipient_restrictions":
      `check_recipient_access inline:{ ${hold} }, permit_mynetworks, reject`,
    "smtp_dns_support_level": "disabled",
    "message_size_limit": "104857600",
  };
}
