/**
 * Queue ids: 10 characters of millisecond time then 8 random characters, in Crockford
 * base32 (digits and upper-case letters, ASCII-ordered), so ids sort by arrival time.
 */

const ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const TIME_CHARS = 10;
const RANDOM_CHARS = 8;

/** A new id: sortable by `nowMs`, unique with overwhelming probability (40 random bits). */
export function newQueueId(nowMs: number): string {
  let time = Math.max(0, Math.floor(nowMs));
  let head = "";
  for (let i = 0; i < TIME_CHARS; i++) {
    head = ALPHABET[time % 32] + head;
    time = Math.floor(time / 32);
  }
  const random = crypto.getRandomValues(new Uint8Array(RANDOM_CHARS));
  let tail = "";
  for (const byte of random) tail += ALPHABET[byte % 32];
  return head + tail;
}

/** Whether `text` has the shape of a queue id (checked before it reaches SQL or output). */
export function isQueueId(text: string): boolean {
  return /^[0-9A-Za-z]{12,64}$/.test(text);
}
