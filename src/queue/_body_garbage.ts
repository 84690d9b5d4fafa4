/**
 * Frees body chunks once they are garbage. Each chunk read from the queue is a new
 * ArrayBuffer; V8 frees one only when a GC finds it unreachable, and it starts a GC for
 * ArrayBuffer memory only after about 64 MB of it have piled up (its external-memory soft
 * limit). A drain of one 50 MiB message thus held the whole body in RSS at its end (issue 13).
 * After every BODY_BYTES_PER_COLLECTION bytes handed out by the readers, a young-generation GC
 * (a scavenge: about a millisecond) frees the chunks nobody holds any more: a body costs at
 * most that much memory beyond what its consumer keeps, whatever its size.
 *
 * `gc` exists only when V8 runs with --expose-gc (deno.json's start and compile tasks, the
 * README's run command); without it nothing is collected early and nothing else changes.
 */

/** Body bytes read between two collections. */
export const BODY_BYTES_PER_COLLECTION = 4 * 1024 * 1024;

/** V8's gc() as --expose-gc installs it. */
export type Collect = (opts: { readonly type: "minor" }) => void;

/** The `gc` --expose-gc installs, if any. */
export function exposedGc(): Collect | undefined {
  const gc: unknown = (globalThis as { gc?: unknown }).gc;
  return typeof gc === "function" ? (gc as Collect) : undefined;
}

/** Counts body bytes read and collects after every `every` bytes. */
export class BodyGarbage {
  readonly #collect: Collect | undefined;
  readonly #every: number;
  #since = 0;

  constructor(collect: Collect | undefined, every = BODY_BYTES_PER_COLLECTION) {
    this.#collect = collect;
    this.#every = every;
  }

  /** Notes `bytes` of body handed out; collects once `every` bytes were handed out since the last time. */
  read(bytes: number): void {
    if (this.#collect === undefined) return;
    this.#since += bytes;
    if (this.#since < this.#every) return;
    this.#since = 0;
    this.#collect({ type: "minor" });
  }
}

/** One count for the process: concurrent drains add up to the same garbage. */
export const BODY_GARBAGE = new BodyGarbage(exposedGc());
