/**
 * Incremental decoder for the SMTP DATA phase (RFC 5321 §4.5.2): finds the one legal end of
 * data, CRLF "." CRLF, removes dot-stuffing and checks limits, across any chunking.
 * Pure: no I/O. Bare CR or bare LF never ends a line here (SMTP smuggling, docs/protocol.md §6.5):
 * the decoder keeps looking for the real end. The lines themselves are checked by the one body
 * check BDAT uses too (body_check.ts), told of the unstuffed lines' octets and ends as this
 * scan finds them (the body is scanned once, not once here and again there).
 */
import { BodyLineCheck } from "./body_check.ts";
import { LineBreakScan } from "./line_break_scan.ts";

const CR = 13;
const LF = 10;
const DOT = 46;

/** Limits for one message body, in bytes. */
export interface DataLimits {
  /** Largest unstuffed body accepted; more is read and dropped. */
  readonly maxMessageBytes: number;
  /** Longest text line on the wire including CRLF (RFC 5321 §4.5.3.1.6: 1000). */
  readonly maxLineBytes: number;
}

/** Why a body was refused, in the order they are reported. */
export type DataFault = "bareNewline" | "lineTooLong" | "tooBig";

/** What one push produced. */
export interface DataPushResult {
  /** Unstuffed body bytes to pass on (views into the input; copy to keep). */
  readonly segments: Uint8Array[];
  /** Offset just past the end marker in this chunk, or -1 while the body goes on. */
  readonly endOffset: number;
}

type State = "lineStart" | "dotAtStart" | "dotCr" | "inLine" | "sawCr" | "done";

/** Decodes one DATA body; create a new one for each message. */
export class DataDecoder {
  #state: State = "lineStart";
  #size = 0;
  #tooBig = false;
  readonly #limits: DataLimits;
  readonly #lines: BodyLineCheck;

  constructor(limits: DataLimits) {
    this.#limits = limits;
    this.#lines = new BodyLineCheck(limits.maxLineBytes);
  }

  /** Unstuffed bytes seen so far (counted past the limit too). */
  get size(): number {
    return this.#size;
  }

  get isDone(): boolean {
    return this.#state === "done";
  }

  /** The first fault found, by severity: framing faults before size. */
  get fault(): DataFault | undefined {
    return this.#lines.fault ?? (this.#tooBig ? "tooBig" : undefined);
  }

  push(chunk: Uint8Array): DataPushResult {
    const segments: Uint8Array[] = [];
    let segStart = 0;
    let i = 0;
    const n = chunk.length;
    const scan = new LineBreakScan(chunk);
    const emit = (end: number) => {
      if (end > segStart) this.#emit(chunk.subarray(segStart, end), segments);
    };
    while (i < n) {
      switch (this.#state) {
        case "done":
          return { segments, endOffset: i };
        case "lineStart": {
          if (chunk[i] === DOT) {
            emit(i);
            i++;
            segStart = i;
            this.#state = "dotAtStart";
          } else {
            this.#state = "inLine";
          }
          break;
        }
        case "dotAtStart": {
          if (chunk[i] === CR) {
            i++;
            segStart = i;
            this.#state = "dotCr";
          } else {
            // The unstuffed line starts with "." again: it counts twice, as sent (body_check.ts).
            if (chunk[i] === DOT) this.#lines.addOctets(1);
            this.#state = "inLine";
          }
          break;
        }
        case "dotCr": {
          if (chunk[i] === LF) {
            i++;
            this.#state = "done";
            return { segments, endOffset: i };
          }
          // "." CR <not LF>: the CR was withheld; it is a bare CR and part of the line.
          this.#emit(Uint8Array.of(CR), segments);
          this.#lines.markBareNewline();
          this.#state = "inLine";
          break;
        }
        case "inLine": {
          // Fast path: jump to the next CR or LF inside this chunk, and on through whole
          // lines while each ends in CRLF and the next does not start with "." (most lines
          // of most bodies), without a state change per line.
          let j = scan.next(i);
          while (j + 2 < n && chunk[j] === CR && chunk[j + 1] === LF && chunk[j + 2] !== DOT) {
            this.#lines.addLine(j + 2 - i);
            i = j + 2;
            j = scan.next(i);
          }
          this.#lines.addOctets(j - i);
          i = j;
          if (i >= n) break;
          // A bare LF stays in the line (the line check refuses it); a CR may end it.
          if (chunk[i] === CR) this.#state = "sawCr";
          else this.#lines.markBareNewline();
          i++;
          break;
        }
        case "sawCr": {
          if (chunk[i] === LF) {
            i++;
            this.#lines.endLine();
            this.#state = "lineStart";
          } else {
            this.#lines.markBareNewline();
            this.#state = "inLine";
          }
          break;
        }
        default: {
          const never: never = this.#state;
          throw new Error(`unreachable state ${never}`);
        }
      }
    }
    emit(n);
    return { segments, endOffset: -1 };
  }

  #emit(seg: Uint8Array, out: Uint8Array[]): void {
    const before = this.#size;
    this.#size += seg.length;
    if (this.#size > this.#limits.maxMessageBytes) {
      this.#tooBig = true;
      const room = this.#limits.maxMessageBytes - before;
      if (room > 0) out.push(seg.subarray(0, room));
      return;
    }
    out.push(seg);
  }
}
