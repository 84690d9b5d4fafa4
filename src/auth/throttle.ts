/**
 * AUTH brute-force throttle, in the style of Dovecot's auth penalty: failures per source
 * address and per account sit in leaky buckets (one failure forgiven per `leakIntervalMs`) and
 * become a delay (0, 1s, 2s, 4s… capped) before the *reply* to every AUTH from that address or
 * for that account, success or not. A correct password is answered late, never refused because
 * of someone else: a neighbour behind the same NAT cannot lock the owner out. On top, caps:
 * past `ipCapFailures` outstanding failures for the address, or `accountCapFailures` for the
 * account, an AUTH gets `454 4.7.0` without its outcome being revealed — unless it succeeded
 * from an address where this account succeeded before. So many addresses together cannot guess
 * one password faster than the cap, and the owner's usual address still gets in. Memory is
 * bounded (`maxEntries` per map) without lifting a cap: a full map makes room by dropping the
 * least recently touched entry below its cap, never a capped one (if it finds none, that map
 * does not count the new key's failure; the other map still does), and an address past its cap
 * creates no new account entries (its AUTHs get `454` anyway): made-up names cannot push a
 * capped account out.
 */

/** Entries a full map looks at, oldest first, for one below its cap to drop. */
const EVICTION_SCAN = 64;

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
  /** Outstanding failures of one address from which its AUTHs get `454`. Default 30. */
  readonly ipCapFailures?: number;
  /** Outstanding failures of one account (from any address) from which it gets `454`. Default 20. */
  readonly accountCapFailures?: number;
  /** How long an address stays known for an account after a success. Default 30 days. */
  readonly knownForMs?: number;
  /** Entries kept per map (addresses, accounts, known pairs). Default 10000. */
  readonly maxEntries?: number;
}

/** What to do with an AUTH exchange that just ended: wait `delayMs`, then answer or refuse. */
export interface ThrottleVerdict {
  readonly delayMs: number;
  /** Answer `454 4.7.0` instead of the outcome (a cap is reached). */
  readonly isRefused: boolean;
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
  readonly #ipCap: number;
  readonly #accountCap: number;
  readonly #knownForMs: number;
  readonly #maxEntries: number;
  readonly #byIp = new Map<string, Bucket>();
  readonly #byUser = new Map<string, Bucket>();
  /** `user NUL ipKey` → when this account last succeeded from that address. */
  readonly #known = new Map<string, number>();

  constructor(opts: AuthThrottleOptions = {}) {
    this.#now = opts.now ?? Date.now;
    this.#leakIntervalMs = opts.leakIntervalMs ?? 60_000;
    this.#baseDelayMs = opts.baseDelayMs ?? 1000;
    this.#maxDelayMs = opts.maxDelayMs ?? 10_000;
    this.#ipCap = opts.ipCapFailures ?? 30;
    this.#accountCap = opts.accountCapFailures ?? 20;
    this.#knownForMs = opts.knownForMs ?? 30 * 86_400_000;
    this.#maxEntries = Math.max(1, opts.maxEntries ?? 10_000);
  }

  /** How long to wait before answering an AUTH from `ip` for `user`. */
  delayMsFor(ip: string, user?: string): number {
    const failures = Math.max(this.#ipLevel(ip), this.#userLevel(user));
    const n = failures;
    if (n < 1) return 0;
    return Math.min(this.#maxDelayMs, this.#baseDelayMs * 2 ** Math.min(n - 1, 30));
  }

  /**
   * Judges an exchange that ended (the credentials were checked): how long to hold the reply,
   * and whether a cap turns it into a refusal. Call before `recordFailure`/`recordSuccess`.
   */
  judge(attempt: { ip: string; user: string | undefined; isSuccess: boolean }): ThrottleVerdict {
    const { ip, user, isSuccess } = attempt;
    const isCapped = this.#ipLevel(ip) >= this.#ipCap ||
      this.#userLevel(user) >= this.#accountCap;
    const isOwnerAtHome = isSuccess && user !== undefined && this.#isKnown(user, ip);
    return { delayMs: this.delayMsFor(ip, user), isRefused: isCapped && !isOwnerAtHome };
  }

  /**
   * Whether an AUTH from `ip` for `user` gets `454` whatever its password (judge's verdict for
   * a success as for a failure): a cap holds and the account never succeeded from this address.
   * Asked before the password check, which it makes needless (scrypt's CPU for nothing).
   */
  isRefusedAnyway(ip: string, user: string): boolean {
    const isCapped = this.#ipLevel(ip) >= this.#ipCap ||
      this.#userLevel(user) >= this.#accountCap;
    return isCapped && !(user !== "" && this.#isKnown(user, ip));
  }

  /** Counts one failure against `ip` and, when known, the user name tried. */
  recordFailure(ip: string, user?: string): void {
    const key = ipKey(ip);
    const isIpCapped = this.#level(this.#byIp, key) >= this.#ipCap;
    this.#add(this.#byIp, key, this.#ipCap);
    // "" (no user name, e.g. a malformed exchange) must not become one bucket shared by all.
    if (user === undefined || user === "") return;
    // A capped address is answered `454` whatever it tries: its made-up names need no entry.
    if (isIpCapped && !this.#byUser.has(user)) return;
    this.#add(this.#byUser, user, this.#accountCap);
  }

  /**
   * Remembers that `user` succeeded from `ip`. Failures are not forgiven by a success (they
   * leak away): the owner logging in every few minutes must not reset an attacker's count.
   */
  recordSuccess(ip: string, user: string): void {
    const key = `${user}\0${ipKey(ip)}`;
    this.#known.delete(key);
    this.#known.set(key, this.#now());
    this.#trim(this.#known);
  }

  /** Entries currently held (for tests and metrics). */
  get size(): { ips: number; users: number; known: number } {
    return { ips: this.#byIp.size, users: this.#byUser.size, known: this.#known.size };
  }

  #ipLevel(ip: string): number {
    return this.#level(this.#byIp, ipKey(ip));
  }

  #userLevel(user: string | undefined): number {
    return user === undefined || user === "" ? 0 : this.#level(this.#byUser, user);
  }

  #isKnown(user: string, ip: string): boolean {
    const key = `${user}\0${ipKey(ip)}`;
    const at = this.#known.get(key);
    if (at === undefined) return false;
    if (this.#now() - at <= this.#knownForMs) return true;
    this.#known.delete(key);
    return false;
  }

  /** Outstanding failures: a partly leaked failure still counts until it is gone. */
  #level(map: Map<string, Bucket>, key: string): number {
    const bucket = map.get(key);
    if (bucket === undefined) return 0;
    const level = this.#leaked(bucket);
    if (level <= 0) map.delete(key);
    return Math.ceil(level);
  }

  #leaked(bucket: Bucket): number {
    const elapsed = Math.max(0, this.#now() - bucket.updatedAt);
    return Math.max(0, bucket.level - elapsed / this.#leakIntervalMs);
  }

  /** One more failure for `key`; a new key in a full map needs room below `cap` (see above). */
  #add(map: Map<string, Bucket>, key: string, cap: number): void {
    const old = map.get(key);
    const level = (old === undefined ? 0 : this.#leaked(old)) + 1;
    // Delete then set: Map keeps insertion order, so the first key is the least recent.
    map.delete(key);
    if (old === undefined && map.size >= this.#maxEntries && !this.#dropBelow(map, cap)) return;
    map.set(key, { level, updatedAt: this.#now() });
  }

  /**
   * Drops the least recently touched entry with fewer than `cap` outstanding failures among the
   * EVICTION_SCAN oldest; the capped ones looked at move to the back, so the next scan looks
   * further. False when it found none (the map is full of capped entries there).
   */
  #dropBelow(map: Map<string, Bucket>, cap: number): boolean {
    for (let i = Math.min(EVICTION_SCAN, map.size); i > 0; i--) {
      const first = map.entries().next();
      if (first.done) return false;
      const [key, bucket] = first.value;
      map.delete(key);
      if (Math.ceil(this.#leaked(bucket)) < cap) return true;
      map.set(key, bucket);
    }
    return false;
  }

  /** Keeps the most recent `maxEntries` of `map` (the known pairs: no cap to keep there). */
  #trim(map: Map<string, unknown>): void {
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
