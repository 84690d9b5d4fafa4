/**
 * Connection admission: at most `maxTotal` connections, and at most `maxPerIp` from one client
 * address, an IPv6 address counting with its whole /64 as the AUTH throttle does (`ipKey`):
 * one subscriber holds a /64 and can rotate through it (README.md smtp.max_connections[_per_ip]).
 * On the ODMR port a connection that has not authenticated yet can be evicted to make room:
 * strangers never hold every slot that a customer needs. Pure bookkeeping; the caller writes the `421 4.7.0` and closes.
 */
import { ipKey } from "../auth/throttle.ts";

/** Why a connection was not admitted. */
export type AdmissionRefusal = "total" | "perIp";

/** An admitted connection's slot. */
export interface AdmissionTicket {
  /** The peer authenticated: this slot can no longer be taken for a newcomer. */
  markAuthenticated(): void;
  /** Frees the slot (idempotent; a no-op after an eviction already freed it). */
  release(): void;
}

/** The answer of `tryAcquire`. */
export type Admission =
  | { readonly ok: true; readonly ticket: AdmissionTicket }
  | { readonly ok: false; readonly refusal: AdmissionRefusal };

/** Limits of a `ConnectionLimiter`. */
export interface ConnectionLimits {
  readonly maxTotal: number;
  readonly maxPerIp: number;
  /**
   * When full, evict a connection that has not authenticated (the oldest of the address that
   * holds the most of them) instead of refusing the newcomer. Only where peers authenticate.
   */
  readonly evictUnauthenticated?: boolean;
}

interface Slot {
  /** The address's `ipKey` (an IPv6 /64). */
  readonly ip: string;
  isAuthenticated: boolean;
  isHeld: boolean;
  readonly onEvict: (() => void) | undefined;
}

/** Counts open connections, in total and per client address. */
export class ConnectionLimiter {
  readonly #limits: ConnectionLimits;
  readonly #perIp = new Map<string, number>();
  /** Held slots in arrival order (oldest first). */
  readonly #slots = new Set<Slot>();

  constructor(limits: ConnectionLimits) {
    this.#limits = limits;
  }

  /** Open connections admitted and not yet released. */
  get total(): number {
    return this.#slots.size;
  }

  /**
   * Admits one connection from `ip`, or says which limit refuses it. `onEvict` is called when
   * the slot is taken back for a newcomer (then the caller tells its peer `421` and closes).
   */
  tryAcquire(address: string, onEvict?: () => void): Admission {
    const ip = ipKey(address);
    if ((this.#perIp.get(ip) ?? 0) >= this.#limits.maxPerIp) {
      return { ok: false, refusal: "perIp" };
    }
    if (this.#slots.size >= this.#limits.maxTotal) {
      const victim = this.#limits.evictUnauthenticated ? this.#evictable() : undefined;
      if (victim === undefined) return { ok: false, refusal: "total" };
      this.#free(victim);
      victim.onEvict?.();
    }
    const slot: Slot = { ip, isAuthenticated: false, isHeld: true, onEvict };
    this.#slots.add(slot);
    this.#perIp.set(ip, (this.#perIp.get(ip) ?? 0) + 1);
    return {
      ok: true,
      ticket: {
        markAuthenticated: () => {
          slot.isAuthenticated = true;
        },
        release: () => this.#free(slot),
      },
    };
  }

  /** The oldest unauthenticated slot of the address holding the most unauthenticated slots. */
  #evictable(): Slot | undefined {
    const counts = new Map<string, number>();
    for (const s of this.#slots) {
      if (!s.isAuthenticated && s.onEvict !== undefined) {
        counts.set(s.ip, (counts.get(s.ip) ?? 0) + 1);
      }
    }
    let ip: string | undefined;
    let most = 0;
    for (const [candidate, n] of counts) {
      if (n > most) [ip, most] = [candidate, n];
    }
    if (ip === undefined) return undefined;
    for (const s of this.#slots) {
      if (s.ip === ip && !s.isAuthenticated && s.onEvict !== undefined) return s;
    }
    return undefined;
  }

  #free(slot: Slot): void {
    if (!slot.isHeld) return;
    slot.isHeld = false;
    this.#slots.delete(slot);
    const n = this.#perIp.get(slot.ip) ?? 0;
    if (n <= 1) this.#perIp.delete(slot.ip);
    else this.#perIp.set(slot.ip, n - 1);
  }
}

/**
 * Admission of implicit-TLS handshakes (listener.ts `admitHandshake`): the same limits as the
 * sessions', counted apart, from the accept to the handshake's end. A silent peer holds a
 * descriptor until the handshake deadline: without this, one address could take them all.
 */
export function handshakeAdmission(
  limits: ConnectionLimits,
): (remoteAddress: string) => (() => void) | undefined {
  const pending = new ConnectionLimiter(limits);
  return (remoteAddress) => {
    const admission = pending.tryAcquire(remoteAddress);
    return admission.ok ? admission.ticket.release : undefined;
  };
}
