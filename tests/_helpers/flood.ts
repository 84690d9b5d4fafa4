/**
 * A peer that floods a connection: writes `total` bytes of a position pattern (a lost, doubled
 * or reordered piece shows) and counts what its writes took, so a test can tell whether the
 * other side held it back. Used by the input-bound tests (tests/net, tests/security).
 */

const PIECE = 64 * 1024;

/** Byte i of a flood: a pattern that shows a lost, doubled or reordered piece. */
export function floodByte(i: number): number {
  return (i * 7 + (i >>> 16)) & 0xff;
}

/** Writes `total` bytes of the pattern with `write`; `sent` counts what the writes took. */
export class Flood {
  sent = 0;
  readonly total: number;
  /** Settles when every byte was written (or a write failed). */
  readonly done: Promise<void>;

  constructor(write: (bytes: Uint8Array) => Promise<unknown>, total: number) {
    this.total = total;
    this.done = (async () => {
      const piece = new Uint8Array(PIECE);
      while (this.sent < total) {
        const n = Math.min(PIECE, total - this.sent);
        for (let j = 0; j < n; j++) piece[j] = floodByte(this.sent + j);
        await write(n === PIECE ? piece : piece.subarray(0, n));
        this.sent += n;
      }
    })();
  }

  /**
   * Resolves once every byte was written, or once the writes made no progress for `quietMs`
   * (the other side holds them back), at most after 30 s.
   */
  async stalled(quietMs = 700): Promise<void> {
    let last = -1;
    for (let waited = 0; waited < 30_000 && this.sent < this.total; waited += quietMs) {
      if (this.sent === last) return;
      last = this.sent;
      await new Promise((r) => setTimeout(r, quietMs));
    }
  }
}
