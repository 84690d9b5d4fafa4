/**
 * A first-in first-out list that keeps its storage when it empties. A JS array used as a queue
 * (push, then shift or pop back to empty) gives its backing store back each time it empties and
 * allocates a new one at the next push (~150 bytes in V8): a connection's reads and writes do
 * that at every command. The storage here only grows (to twice the most items held at once).
 */

/** A queue of `T`; never holds `undefined` as an item. */
export class Fifo<T> {
  #items: (T | undefined)[] = [];
  #head = 0;
  #tail = 0;

  /** Items queued. */
  get length(): number {
    return this.#tail - this.#head;
  }

  push(item: T): void {
    if (this.#head === this.#tail) {
      this.#head = 0;
      this.#tail = 0;
    } else if (this.#tail === this.#items.length && this.#head >= this.#tail >> 1) {
      // Never empty and at its end: the items move to the front (storage stays bounded).
      const n = this.#tail - this.#head;
      this.#items.copyWithin(0, this.#head, this.#tail);
      this.#items.fill(undefined, n, this.#tail);
      this.#head = 0;
      this.#tail = n;
    }
    this.#items[this.#tail++] = item;
  }

  /** The first item, removed; undefined when empty. */
  shift(): T | undefined {
    if (this.#head === this.#tail) return undefined;
    const item = this.#items[this.#head];
    this.#items[this.#head++] = undefined;
    return item;
  }

  /** The item at `index` from the front, left in place; undefined past the end. */
  at(index: number): T | undefined {
    return index < this.#tail - this.#head ? this.#items[this.#head + index] : undefined;
  }

  /** Removes every item; returns them in order. */
  clear(): T[] {
    const out: T[] = [];
    for (let item = this.shift(); item !== undefined; item = this.shift()) out.push(item);
    return out;
  }
}
