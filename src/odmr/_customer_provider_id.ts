/**
 * The provider's queue id of a relayed message, for the customer's log line: the `id` of the
 * topmost `Received:` header (the one the provider's MX stamped), found in the body's first
 * HEAD_SNIFF_BYTES. Read from the bytes as they pass, without decoding them: in one look at the
 * first chunk when it holds that header (the usual case), else from a copy of the bytes so far.
 */

/** How many bytes of the body are searched for the provider's queue id. */
export const HEAD_SNIFF_BYTES = 2048;

const RECEIVED = "Received:";
const ID = " id "; // after any whitespace byte, see isSpace

/** Nothing kept yet (shared: never written). */
const NONE_YET = new Uint8Array(0);

/** Finds the provider's queue id in the first bytes of a body, chunk by chunk. */
export class ProviderIdSniffer {
  /** The bytes seen so far when they had to be kept; undefined once decided. */
  #head: Uint8Array | undefined = NONE_YET;
  #id: string | undefined;

  /** Looks at the next body bytes (valid only during the call: copied when kept). */
  push(chunk: Uint8Array): void {
    const head = this.#head;
    if (head === undefined) return;
    const room = HEAD_SNIFF_BYTES - head.length;
    const more = chunk.subarray(0, room);
    let bytes: Uint8Array;
    if (head.length === 0) {
      bytes = more;
    } else {
      bytes = new Uint8Array(head.length + more.length);
      bytes.set(head);
      bytes.set(more, head.length);
    }
    const found = findId(bytes, bytes.length >= HEAD_SNIFF_BYTES);
    if (found !== MORE) {
      this.#id = found;
      this.#head = undefined;
    } else {
      this.#head = bytes === more ? more.slice() : bytes;
    }
  }

  /** The id, once the body (or its first HEAD_SNIFF_BYTES) went past; undefined if none. */
  get id(): string | undefined {
    const head = this.#head;
    if (head !== undefined) {
      const found = findId(head, true);
      this.#id = found === MORE ? undefined : found;
      this.#head = undefined;
    }
    return this.#id;
  }
}

const MORE = Symbol("more bytes needed");

/**
 * The id after the first whitespace + `id ` that follows a `Received:` at the very start, as
 * `/^Received:[^]*?\sid ([A-Za-z0-9._-]+)/` finds it in the latin1 text: undefined when there
 * is none, MORE when the bytes end before that is known (unless `isAll`).
 */
function findId(b: Uint8Array, isAll: boolean): string | undefined | typeof MORE {
  for (let i = 0; i < RECEIVED.length; i++) {
    if (i >= b.length) return isAll ? undefined : MORE;
    if (b[i] !== RECEIVED.charCodeAt(i)) return undefined;
  }
  // Each "i" is a candidate (found natively); `at` is the whitespace byte before it.
  for (let i = b.indexOf(0x69, RECEIVED.length + 1); i >= 0; i = b.indexOf(0x69, i + 1)) {
    const at = i - 1;
    if (at + ID.length > b.length) break;
    if (!isSpace(b[at] ?? 0) || !startsWithId(b, i)) continue;
    let end = at + ID.length;
    while (end < b.length && isIdByte(b[end] ?? 0)) end++;
    if (end === at + ID.length) continue; // no id here: search on
    if (end === b.length && !isAll) return MORE; // the id may go on in the next chunk
    return String.fromCharCode(...b.subarray(at + ID.length, end));
  }
  return isAll ? undefined : MORE;
}

function startsWithId(b: Uint8Array, at: number): boolean {
  return b[at] === 0x69 && b[at + 1] === 0x64 && b[at + 2] === 0x20; // "id "
}

/** `\s` in latin1 text: TAB, LF, VT, FF, CR, space and NBSP. */
function isSpace(c: number): boolean {
  return (c >= 0x09 && c <= 0x0d) || c === 0x20 || c === 0xa0;
}

/** `[A-Za-z0-9._-]` */
function isIdByte(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) ||
    c === 0x2e || c === 0x5f || c === 0x2d;
}
