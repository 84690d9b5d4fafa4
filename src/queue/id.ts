/**
 * Queue ids: 10 characters of millisecond time then 8 random characters, in Crockford
 * base32 (digits and upper-case letters, ASCII-ordered), so ids sort by arrival time.
 */

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const TIME_CHARS = 10;
const RANDOM_CHARS = 8;
/**
 * Random bytes drawn at once, for this many ids: a new Uint8Array and a getRandomValues call per
 * id cost an MX ~1 µs of its one thread per message (#13); the bytes are the same CSPRNG's.
 */
const IDS_PER_DRAW = 128;
const randomPool = new Uint8Array(RANDOM_CHARS * IDS_PER_DRAW);
let poolOffset = randomPool.length;
/** The time part of the last id (ids of the same millisecond share it). */
let lastMs = NaN;
let lastHead = "";

/** A new id: sortable by `nowMs`, unique with overwhelming probability (40 random bits). */
export function newQueueId(nowMs: number): string {
  const ms = Math.max(0, Math.floor(nowMs));
  if (ms !== lastMs) {
    lastHead = timeHead(ms);
    lastMs = ms;
  }
  if (poolOffset === randomPool.length) {
    crypto.getRandomValues(randomPool);
    poolOffset = 0;
  }
  let tail = "";
  for (let i = 0; i < RANDOM_CHARS; i++) tail += ALPHABET[randomPool[poolOffset + i]! % 32];
  poolOffset += RANDOM_CHARS;
  return lastHead + tail;
}

function timeHead(ms: number): string {
  let time = ms;
  let head = "";
  for (let i = 0; i < TIME_CHARS; i++) {
    head = ALPHABET[time % 32] + head;
    time = Math.floor(time / 32);
  }
  return head;
}

/** Whether `text` has the shape of a queue id (checked before it reaches SQL or output). */
export function isQueueId(text: string): boolean {
  return /^[0-9A-Za-z]{12,64}$/.test(text);
}
