/**
 * MD5 (RFC 1321) with access to the chaining state, which node:crypto does not expose.
 * Needed only for the Dovecot `{CRAM-MD5}` verifier (HMAC-MD5 midstates); never use MD5 for
 * anything new. Pure: no I/O, no randomness.
 */

/** The four 32-bit chaining words a, b, c, d. */
export type Md5State = readonly [number, number, number, number];

/** MD5 block size in bytes. */
export const MD5_BLOCK_BYTES = 64;

/** The RFC 1321 §3.3 initial chaining state. */
export const MD5_INITIAL_STATE: Md5State = [0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476];

// Per-round left-rotation amounts (RFC 1321 §3.4).
const SHIFTS = [7, 12, 17, 22, 5, 9, 14, 20, 4, 11, 16, 23, 6, 10, 15, 21] as const;

// T[i] = floor(abs(sin(i + 1)) * 2^32).
const T: Uint32Array = (() => {
  const t = new Uint32Array(64);
  for (let i = 0; i < 64; i++) t[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 0x100000000);
  return t;
})();

/** Runs one MD5 compression over the 64 bytes at `block[offset..]`; returns the new state. */
export function md5Compress(state: Md5State, block: Uint8Array, offset = 0): Md5State {
  const x = new Uint32Array(16);
  for (let i = 0; i < 16; i++) {
    const p = offset + i * 4;
    x[i] = ((block[p] ?? 0) | ((block[p + 1] ?? 0) << 8) | ((block[p + 2] ?? 0) << 16) |
      ((block[p + 3] ?? 0) << 24)) >>> 0;
  }
  let [a, b, c, d] = state;
  for (let i = 0; i < 64; i++) {
    const round = i >> 4;
    let f: number;
    let g: number;
    if (round === 0) {
      f = (b & c) | (~b & d);
      g = i;
    } else if (round === 1) {
      f = (d & b) | (~d & c);
      g = (5 * i + 1) & 15;
    } else if (round === 2) {
      f = b ^ c ^ d;
      g = (3 * i + 5) & 15;
    } else {
      f = c ^ (b | ~d);
      g = (7 * i) & 15;
    }
    // Both indexes are in range by construction (i < 64, g < 16).
    const sum = (a + f + (T[i] as number) + (x[g] as number)) >>> 0;
    const s = SHIFTS[(round << 2) | (i & 3)] as number;
    a = d;
    d = c;
    c = b;
    b = (b + ((sum << s) | (sum >>> (32 - s)))) >>> 0;
  }
  return [
    (state[0] + a) >>> 0,
    (state[1] + b) >>> 0,
    (state[2] + c) >>> 0,
    (state[3] + d) >>> 0,
  ];
}

/**
 * Incremental MD5 that can start from a saved chaining state. `bytesBefore` is the number of
 * bytes (a multiple of 64) already absorbed into `state`; it counts toward the final length.
 */
export class Md5 {
  #state: Md5State;
  #length: number;
  #buffer = new Uint8Array(MD5_BLOCK_BYTES);
  #buffered = 0;

  constructor(state: Md5State = MD5_INITIAL_STATE, bytesBefore = 0) {
    if (bytesBefore % MD5_BLOCK_BYTES !== 0) {
      throw new RangeError("Md5: bytesBefore must be a multiple of 64");
    }
    this.#state = state;
    this.#length = bytesBefore;
  }

  /** The chaining state after the whole blocks absorbed so far. */
  get state(): Md5State {
    return this.#state;
  }

  /** Absorbs `data`. */
  update(data: Uint8Array): this {
    let i = 0;
    this.#length += data.length;
    if (this.#buffered > 0) {
      const take = Math.min(MD5_BLOCK_BYTES - this.#buffered, data.length);
      this.#buffer.set(data.subarray(0, take), this.#buffered);
      this.#buffered += take;
      i = take;
      if (this.#buffered < MD5_BLOCK_BYTES) return this;
      this.#state = md5Compress(this.#state, this.#buffer);
      this.#buffered = 0;
    }
    for (; i + MD5_BLOCK_BYTES <= data.length; i += MD5_BLOCK_BYTES) {
      this.#state = md5Compress(this.#state, data, i);
    }
    if (i < data.length) {
      this.#buffer.set(data.subarray(i), 0);
      this.#buffered = data.length - i;
    }
    return this;
  }

  /** Pads (RFC 1321 §3.1–3.2) and returns the 16-byte digest. The object is spent after this. */
  digest(): Uint8Array {
    const bitLength = this.#length * 8;
    const padLength = this.#buffered < 56 ? 56 - this.#buffered : 120 - this.#buffered;
    const tail = new Uint8Array(padLength + 8);
    tail[0] = 0x80;
    const view = new DataView(tail.buffer);
    view.setUint32(padLength, bitLength >>> 0, true);
    view.setUint32(padLength + 4, Math.floor(bitLength / 0x100000000) >>> 0, true);
    const length = this.#length;
    this.update(tail);
    this.#length = length;
    return stateToBytes(this.#state);
  }
}

/** MD5 of `data` in one call. */
export function md5(data: Uint8Array): Uint8Array {
  return new Md5().update(data).digest();
}

/** The state as 16 bytes, each word little-endian (this is also the digest encoding). */
export function stateToBytes(state: Md5State): Uint8Array {
  const out = new Uint8Array(16);
  const view = new DataView(out.buffer);
  state.forEach((word, i) => view.setUint32(i * 4, word, true));
  return out;
}

/** Reads a state from 16 little-endian bytes at `bytes[offset..]`. */
export function bytesToState(bytes: Uint8Array, offset = 0): Md5State {
  if (bytes.length < offset + 16) throw new RangeError("bytesToState: need 16 bytes");
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, 16);
  return [
    view.getUint32(0, true),
    view.getUint32(4, true),
    view.getUint32(8, true),
    view.getUint32(12, true),
  ];
}
