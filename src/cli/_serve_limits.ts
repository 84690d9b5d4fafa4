/**
 * Connection admission for inbound SMTP: at most `maxTotal` connections, and at most
 * `maxPerIp` from one client address (CONTRACT.md smtp.max_connections[_per_ip]).
 * Pure bookkeeping; the caller replies `421 4.7.0` and closes when admission is refused.
 */

/** Why a connection was not admitted. */
export type AdmissionRefusal = "total" | "perIp";

/** Counts open connections, in total and per client address. */
export class ConnectionLimiter {
  readonly #maxTotal: number;
  readonly #maxPerIp: number;
  readonly #perIp = new Map<string, number>();
  #total = 0;

  constructor(limits: { maxTotal: number; maxPerIp: number }) {
    this.#maxTotal = limits.maxTotal;
    this.#maxPerIp = limits.maxPerIp;
  }

  /** Open connections admitted and not yet released. */
  get total(): number {
    return this.#total;
  }

  /** Admits one connection from `ip`, or says which limit refuses it. */
  tryAcquire(ip: string): { ok: true } | { ok: false; refusal: AdmissionRefusal } {
    if (this.#total >= this.#maxTotal) return { ok: false, refusal: "total" };
    const n = this.#perIp.get(ip) ?? 0;
    if (n >= this.#maxPerIp) return { ok: false, refusal: "perIp" };
    this.#perIp.set(ip, n + 1);
    this.#total++;
    return { ok: true };
  }

  /** Releases one admitted connection from `ip`. */
  release(ip: string): void {
    const n = this.#perIp.get(ip);
    if (n === undefined) throw new Error(`ConnectionLimiter.release() without acquire for ${ip}`);
    if (n <= 1) this.#perIp.delete(ip);
    else this.#perIp.set(ip, n - 1);
    this.#total--;
  }
}
