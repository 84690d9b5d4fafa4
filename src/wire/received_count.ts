/**
 * The `Received:` fields of a message's header section, counted as its bytes stream to the sink
 * (RFC 5321 §6.3: a relay SHOULD refuse a message past a count of them, a mail loop; Postfix's
 * `hopcount_limit`). Holds no bytes, only where it is in the current line: a chunk may end
 * anywhere, even inside a field name. Only a line's start is looked at; the rest of each line is
 * skipped with `indexOf`, and nothing after the header section's empty line (RFC 5322 §2.1).
 * A field is a line starting with `Received`, in any case, then optional WSP (RFC 5322 §4.5,
 * obsolete syntax) and a colon; a folded line starts with WSP and never counts.
 */

/**
 * A message with this many Received fields, the one this relay adds included, is refused at
 * the end of its data (`554 5.4.6`): Postfix's `hopcount_limit` default, which counts the same.
 */
export const MAX_RECEIVED_FIELDS = 50;

const LF = 10;
const CR = 13;
const SP = 32;
const HTAB = 9;
const COLON = 58;
/** "received", lower case (every byte a letter: `b | 0x20` folds only its case). */
const NAME = Uint8Array.from([0x72, 0x65, 0x63, 0x65, 0x69, 0x76, 0x65, 0x64]);

// Where the counter is in the current line. 1 to 7: that many bytes of NAME matched.
const AT_LINE_START = 0;
/** The whole name matched: WSP may follow, then the colon. */
const AFTER_NAME = NAME.length;
/** A CR began the line: the empty line if LF follows. */
const CR_AT_START = AFTER_NAME + 1;
/** Nothing more in this line matters. */
const REST_OF_LINE = AFTER_NAME + 2;
/** The header section ended. */
const DONE = AFTER_NAME + 3;

/** Counts one message's Received fields; a new one for each message. */
export class ReceivedCount {
  #count = 0;
  #state = AT_LINE_START;

  /** Received fields seen so far. */
  get count(): number {
    return this.#count;
  }

  /** The next bytes of the message (as stored: unstuffed). */
  push(chunk: Uint8Array): void {
    let state = this.#state;
    if (state === DONE) return;
    const n = chunk.length;
    let i = 0;
    while (i < n) {
      if (state === REST_OF_LINE) {
        const lf = chunk.indexOf(LF, i);
        if (lf < 0) break;
        i = lf + 1;
        state = AT_LINE_START;
        continue;
      }
      const b = chunk[i]!;
      if (state === AT_LINE_START) {
        i++;
        if ((b | 0x20) === NAME[0]) state = 1;
        else if (b === CR) state = CR_AT_START;
        else if (b === LF) state = DONE;
        else state = REST_OF_LINE;
      } else if (state < AFTER_NAME) {
        // A mismatch is looked at again as the rest of the line (it may be its LF).
        if ((b | 0x20) === NAME[state]) {
          i++;
          state++;
        } else {
          state = REST_OF_LINE;
        }
      } else if (state === AFTER_NAME) {
        if (b === COLON) {
          i++;
          this.#count++;
          state = REST_OF_LINE;
        } else if (b === SP || b === HTAB) {
          i++;
        } else {
          state = REST_OF_LINE;
        }
      } else if (state === CR_AT_START) {
        if (b === LF) state = DONE;
        else state = REST_OF_LINE;
        i++;
      }
      if (state === DONE) break;
    }
    this.#state = state;
  }
}
