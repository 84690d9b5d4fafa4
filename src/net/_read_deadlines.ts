/**
 * The read deadlines of every Conn of the process on one timer (conn.ts). A timer per
 * connection cost a setTimeout and a clearTimeout at every connection of an MX (~14 µs of the
 * ~0.7 ms of CPU per message in serve's profile); here a connection's waiting read only joins
 * and leaves a set. The timer is armed for the earliest deadline in the set; when it fires, it
 * fails the reads whose deadline has passed and re-arms for the next one. Reads that ended
 * meanwhile have left the set, so it then finds nothing or a later deadline. It never keeps
 * the process alive (unref): a waiting read has its socket for that.
 */

/** A read waiting until `deadlineAt` (a `performance.now()` time). */
export interface DeadlineWaiter {
  readonly deadlineAt: number;
  /** Called once, when the deadline passed while it was still in the set. */
  expire(): void;
  /** Its place in the set (kept by the set; -1 when not in it). */
  slot: number;
}

/**
 * Waiters on one shared timer. An array with each waiter's place in it, not a Set: every read
 * and write joins and leaves it, and a Set that grows and shrinks with them allocated at it.
 */
export class ReadDeadlines {
  /**
   * The first #count slots hold the waiters. The array keeps its length when waiters leave: one
   * popped back to empty gave its storage back and reallocated it at the next read.
   */
  readonly #waiting: (DeadlineWaiter | undefined)[] = [];
  #count = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;
  /** When #timer fires (performance.now() ms); Infinity when none is armed. */
  #timerAt = Infinity;

  /** Starts watching `w` (its deadline must not change while it is in the set). */
  add(w: DeadlineWaiter): void {
    if (w.slot < 0) {
      w.slot = this.#count;
      this.#waiting[this.#count++] = w;
    }
    if (w.deadlineAt < this.#timerAt) this.#arm(w.deadlineAt);
  }

  /** Stops watching `w` (its read ended). The timer stays armed: it finds nothing and stops. */
  delete(w: DeadlineWaiter): void {
    const slot = w.slot;
    if (slot < 0) return;
    w.slot = -1;
    const lastSlot = --this.#count;
    const last = this.#waiting[lastSlot] as DeadlineWaiter;
    this.#waiting[lastSlot] = undefined;
    if (last !== w) {
      this.#waiting[slot] = last;
      last.slot = slot;
    }
  }

  /** How many reads wait (tests). */
  get size(): number {
    return this.#count;
  }

  #arm(at: number): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timerAt = at;
    // Whole milliseconds, rounded up: a timer of a fraction less would fire just before it.
    this.#timer = setTimeout(this.#fire, Math.max(1, Math.ceil(at - performance.now())));
    Deno.unrefTimer(this.#timer);
  }

  /** The waiters now (a copy: the timer's pass may remove some). */
  #live(): DeadlineWaiter[] {
    return this.#waiting.slice(0, this.#count) as DeadlineWaiter[];
  }

  #fire = (): void => {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    const now = performance.now();
    const expired: DeadlineWaiter[] = [];
    for (const w of this.#live()) if (w.deadlineAt <= now) expired.push(w);
    for (const w of expired) this.delete(w);
    let next = Infinity;
    for (const w of this.#live()) if (w.deadlineAt < next) next = w.deadlineAt;
    if (next < this.#timerAt) this.#arm(next);
    for (const w of expired) w.expire();
  };
}

/** The process's one set of read deadlines. */
export const readDeadlines = new ReadDeadlines();

/**
 * The same for the writes of native connections (_tcp_writer.ts): a write to the kernel that
 * is still waiting at its deadline (a peer that stopped reading) fails and drops the connection.
 */
export const writeDeadlines = new ReadDeadlines();
