/**
 * AUTH brute-force throttle (PROTOCOL.md §6.4): failures per source IP and per user name in
 * leaky buckets (one failure forgiven per `leakIntervalMs`), turned into a growing delay
 * (0, 1s, 2s, 4s… capped) and, per IP, a block. Memory is bounded: oldest entries are dropped.
 */

/** Tuning and the clock (tests inject a fake one). */
export interface AuthThrottleOptions {
  /** Milliseconds since an arbitrary epoch; `Date.now` by default. */
  readonly now?: () => number;
  /** Time for one recorded failure to be forgotten. Default 60 s. */
  readonly leakIntervalMs?: number;
  /** Delay after the first failure; doubles after each further one. Default 1 s. */
  readonly baseDelayMs?: number;
  /** Delay cap. Default 10 s. */
  readonly maxDelayMs?: number;
  /** An IP with this many outstanding failures is blocked. Default 30. */
  readonly blockAfterFailures?: number;
  /** Entries kept per map (IPs, users); the least recently touched go first. Default 10000. */
  readonly maxEntries?: number;
}

interface Bucket {
  level: number;
  updatedAt: number;
}

/** Counts AUTH failures across connections; one instance per `serve` process. */
export class AuthThrottle {
  readonly #now: () => number;
  readonly #leakIntervalMs: number;
  readonly #baseDelayMs: number;
  readonly #maxDelayMs: number;
  readonly #blockAfter: number;
  readonly #maxEntries: number;
  readonly #byIp = new Map<string, Bucket>();
  readonly #byUser = new Map<string, Bucket>();

  constructor(opts: AuthThrottleOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#leakIntervalMs = opts.leakIntervalMs ?? 60_000;
    this.#baseDelayMs = opts.baseDelayMs ?? 1000;
    this.#maxDelayMs = opts.maxDelayMs ?? 10_000;
    this.#blockAfter = opts.blockAfterFailures ?? 30;
    this.#maxEntries = Math.max(1, opts.maxEntries ?? 10_000);
  }

  /** How long to wait before answering a failed AUTH from `ip` for `user`. */
  delayMsFor(ip: string, user?: string): number {
    const failures = Math.max(
      this.#level(this.#byIp, ipKey(ip)),
      user === undefined || user === "" ? 0 : this.#level(this.#byUser, user),
    );
    const n = Math.floor(failures);
    if (n < 1) return 0;
    return Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** Math.min(n - 1, 30));
  }

  /** True when `ip` has too many outstanding failures: refuse AUTH without trying. */
  isBlocked(ip: string): boolean {
    return this.#level(this.#byIp, ipKey(ip)) >= this.#blockAfter;
  }

  /** Counts one failure against `ip` and, when known, the user name tried. */
  recordFailure(ip: string, user?: string): void {
    this.#add(this.#byIp, ipKey(ip));
    // "" (no user name, e.g. a malformed exchange) must not become one bucket shared by all.
    if (user !== undefined && user !== "") this.#add(this.#byUser, user);
  }

  /** A success forgets the failures of this IP and this user. */
  recordSuccess(ip: string, user?: string): void {
    this.#byIp.delete(ipKey(ip));
    if (user !== undefined) this.#byUser.delete(user);
  }

  /** Entries currently held (for tests and metrics). */
  get size(): { ips: number; users: number } {
    return { ips: this.#byIp.size, users: this.#byUser.size };
  }

  #level(map: Map<string, Bucket>, key: string): number {
    const bucket = map.get(key);
    if (bucket === undefined) return 0;
    const level = this.#leaked(bucket);
    if (level <= 0) map.delete(key);
    return level;
  }

  #leaked(bucket: Bucket): number {
    const elapsed = Math.max(0, this.#now() - bucket.updatedAt);
    return Math.max(0, bucket.level - elapsed / this.#leakIntervalMs);
  }

  #add(map: Map<string, Bucket>, key: string): void {
    const old = map.get(key);
    const level = (old === undefined ? 0 : this.#leaked(old)) + 1;
    // Delete then set: Map keeps insertion order, so the first key is the least recent.
    map.delete(key);
    map.set(key, { level, updatedAt: this.#now() });
    while (map.size > this.#maxEntries) {
      const oldest = map.keys().next();
      if (oldest.done) break;
      map.delete(oldest.value);
    }
  }
}

/**
 * The throttling key for an address: IPv4 as is (IPv4-mapped IPv6 unwrapped), IPv6 by its
 * /64, because one subscriber usually holds a whole /64 and could rotate through it.
 */
export function ipKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped !== null) return mapped[1] ?? ip;
  if (!ip.includes(":")) return ip;
  const bare = ip.split("%")[0] ?? ip;
  const [head = "", tail] = bare.split("::");
  const headGroups = head === "" ? [] : head.split(":");
  let groups = headGroups;
  if (tail !== undefined) {
    const tailGroups = tail === "" ? [] : tail.split(":");
    const zeros = Array<string>(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill("0");
    groups = [...headGroups, ...zeros, ...tailGroups];
  }
  return groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, "")).join(":") +
    "::/64";
}
