/**
 * Per-user hourly limits of the submission port: one token bucket per user and kind
 * (messages, recipients), holding at most a limit's worth of tokens and refilled evenly over
 * an hour, so a user may send a burst up to the limit and then the limit per hour. Memory:
 * two numbers per user that submitted.
 */

/** Hourly limits; tests pass their own clock. */
export interface RateLimits {
  readonly messagesPerHour: number;
  readonly recipientsPerHour: number;
  readonly now?: () => number;
}

const HOUR_MS = 3_600_000;

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** Counts what each user submitted; one instance per `serve` process. */
export class SubmissionRate {
  readonly #limits: RateLimits;
  readonly #now: () => number;
  readonly #messages = new Map<string, Bucket>();
  readonly #recipients = new Map<string, Bucket>();

  constructor(limits: RateLimits) {
    this.#limits = limits;
    this.#now = limits.now ?? Date.now;
  }

  /** Takes one message from `user`'s allowance; false when the hour's allowance is spent. */
  takeMessage(user: string): boolean {
    return this.#take(this.#messages, user, this.#limits.messagesPerHour);
  }

  /** Takes one recipient from `user`'s allowance; false when the hour's allowance is spent. */
  takeRecipient(user: string): boolean {
    return this.#take(this.#recipients, user, this.#limits.recipientsPerHour);
  }

  /** Gives back a message taken for a MAIL the queue then refused. */
  returnMessage(user: string): void {
    this.#giveBack(this.#messages, user, this.#limits.messagesPerHour);
  }

  /** Gives back a recipient taken for a RCPT that was then refused: only accepted ones count. */
  returnRecipient(user: string): void {
    this.#giveBack(this.#recipients, user, this.#limits.recipientsPerHour);
  }

  #giveBack(buckets: Map<string, Bucket>, user: string, perHour: number): void {
    const b = buckets.get(user);
    if (b !== undefined) b.tokens = Math.min(perHour, b.tokens + 1);
  }

  #take(buckets: Map<string, Bucket>, user: string, perHour: number): boolean {
    const now = this.#now();
    const b = buckets.get(user) ?? { tokens: perHour, updatedAt: now };
    // A clock stepped back refills nothing and takes nothing away (as src/auth/throttle.ts).
    const elapsed = Math.max(0, now - b.updatedAt);
    b.tokens = Math.min(perHour, b.tokens + (elapsed * perHour) / HOUR_MS);
    b.updatedAt = now;
    buckets.set(user, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }
}
