/**
 * DKIM canonicalization (RFC 6376 §3.4): "simple" and "relaxed" for header fields and bodies.
 * The body canonicalizer is incremental: it takes the body in chunks of any size and split
 * anywhere, and keeps only counters between chunks (trailing empty lines are counted, not held),
 * so a 50 MB body costs no more memory than a 50-byte one. Pure: bytes in, bytes out.
 */

/** One of the two canonicalization algorithms of RFC 6376 §3.4. */
export type Canonicalization = "simple" | "relaxed";

const CR = 13;
const LF = 10;
const SP = 32;
const HTAB = 9;
const COLON = 58;

/** Most bytes handed to `emit` at once (the output buffer of one pass). */
const OUT_BYTES = 16 * 1024;
const CRLF_RUN = new Uint8Array(OUT_BYTES).map((_, i) => (i % 2 === 0 ? CR : LF));

/**
 * Canonicalizes a body chunk by chunk and hands the canonical bytes to `emit` (usually a hash
 * update). Emitted arrays are reused: `emit` must consume them before returning.
 */
export class BodyCanonicalizer {
  readonly #isRelaxed: boolean;
  readonly #emit: (bytes: Uint8Array) => void;
  readonly #out = new Uint8Array(OUT_BYTES);
  #outLength = 0;
  /** Line breaks seen since the last content byte: emitted only if content follows (§3.4.3). */
  #heldCrlfs = 0;
  /** A CR ended the previous chunk; whether it starts a CRLF depends on the next byte. */
  #hasHeldCr = false;
  /** Relaxed: WSP seen in this line and not yet written (one SP if content follows, §3.4.4). */
  #hasHeldWsp = false;
  #hasContent = false;
  #isFinished = false;

  constructor(kind: Canonicalization, emit: (bytes: Uint8Array) => void) {
    this.#isRelaxed = kind === "relaxed";
    this.#emit = emit;
  }

  /** Feeds the next body bytes. */
  update(chunk: Uint8Array): void {
    if (this.#isFinished) throw new Error("BodyCanonicalizer.update() after finish()");
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i] as number;
      if (this.#hasHeldCr) {
        this.#hasHeldCr = false;
        if (b === LF) {
          this.#lineBreak();
          continue;
        }
        this.#content(CR);
      }
      if (b === CR) {
        this.#hasHeldCr = true;
      } else if (this.#isRelaxed && (b === SP || b === HTAB)) {
        this.#hasHeldWsp = true;
      } else {
        this.#content(b);
      }
    }
    this.#flush();
  }

  /** Ends the body: writes the final line break (or the empty-body form) and flushes. */
  finish(): void {
    if (this.#isFinished) return;
    if (this.#hasHeldCr) {
      this.#hasHeldCr = false;
      this.#content(CR);
    }
    // WSP at the very end, with no CRLF after it, is not "at the end of a line": it stays
    // (one SP) and the CRLF is added after it, as python3-dkim does. Over SMTP a
    // body always ends with CRLF, so this only matters for other sources.
    if (this.#hasHeldWsp) {
      this.#hasHeldWsp = false;
      if (this.#heldCrlfs > 0) this.#writeHeldCrlfs();
      this.#put(SP);
      this.#hasContent = true;
    }
    // A body that ends without CRLF gets one (§3.4.3, §3.4.4); trailing empty lines are dropped.
    // An empty body is CRLF under "simple" and nothing under "relaxed".
    if (this.#hasContent || !this.#isRelaxed) {
      this.#heldCrlfs = 0;
      this.#put(CR);
      this.#put(LF);
    }
    this.#flush();
    this.#isFinished = true;
  }

  #lineBreak(): void {
    // Relaxed: whitespace at the end of a line is deleted (§3.4.4 a).
    this.#hasHeldWsp = false;
    this.#heldCrlfs++;
  }

  #content(b: number): void {
    if (this.#heldCrlfs > 0) this.#writeHeldCrlfs();
    if (this.#hasHeldWsp) {
      this.#hasHeldWsp = false;
      this.#put(SP);
    }
    this.#put(b);
    this.#hasContent = true;
  }

  #writeHeldCrlfs(): void {
    this.#flush();
    let bytes = this.#heldCrlfs * 2;
    this.#heldCrlfs = 0;
    while (bytes > 0) {
      const n = Math.min(bytes, CRLF_RUN.length);
      this.#emit(CRLF_RUN.subarray(0, n));
      bytes -= n;
    }
  }

  #put(b: number): void {
    if (this.#outLength === this.#out.length) this.#flush();
    this.#out[this.#outLength++] = b;
  }

  #flush(): void {
    if (this.#outLength === 0) return;
    this.#emit(this.#out.subarray(0, this.#outLength));
    this.#outLength = 0;
  }
}

/** A header field as it appears in the message: its name and the raw bytes (folding and CRLF). */
export interface HeaderField {
  /** Field name as written (case kept), without the colon. */
  readonly name: string;
  /** The whole field: name, colon, value with its folding, and the final CRLF. */
  readonly raw: Uint8Array;
}

/**
 * The canonical form of one header field, with its CRLF (§3.4.1, §3.4.2). Relaxed: name
 * lower-cased, value unfolded, WSP runs reduced to one SP, WSP around the colon and at the end
 * deleted.
 */
export function canonicalizeHeader(field: HeaderField, kind: Canonicalization): Uint8Array {
  if (kind === "simple") return field.raw;
  const raw = field.raw;
  const colon = raw.indexOf(COLON);
  const out: number[] = [];
  for (const c of new TextEncoder().encode(field.name.toLowerCase())) out.push(c);
  out.push(COLON);
  let hasHeldWsp = false;
  let hasValue = false;
  const end = raw.length >= 2 && raw[raw.length - 2] === CR && raw[raw.length - 1] === LF
    ? raw.length - 2
    : raw.length;
  for (let i = colon + 1; i < end; i++) {
    const b = raw[i] as number;
    // Unfolding: a CRLF inside a field is always followed by WSP (RFC 5322 §2.2.3).
    if (b === CR && raw[i + 1] === LF) {
      i++;
      continue;
    }
    if (b === SP || b === HTAB) {
      hasHeldWsp = true;
      continue;
    }
    if (hasHeldWsp && hasValue) out.push(SP);
    hasHeldWsp = false;
    hasValue = true;
    out.push(b);
  }
  out.push(CR, LF);
  return Uint8Array.from(out);
}
