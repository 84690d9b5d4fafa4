/**
 * The From fields of a submitted message, read from its header section as it streams (the
 * body passes unread; the section is held up to the DKIM signer's limit, as the signer holds
 * it). The submission sink refuses on what it finds (sink.ts).
 */
import { type HeaderField, HeaderSplitter } from "../dkim/header_section.ts";
import { DEFAULT_MAX_HEADER_BYTES } from "../dkim/signer.ts";

/** What the header section says of its author. */
export type FromFields =
  /** Over the limit: the DKIM signer cannot read it either (it goes out unsigned). */
  | { readonly kind: "unreadable" }
  /** The From fields, in order (RFC 5322 §3.6: exactly one). */
  | { readonly kind: "read"; readonly froms: readonly HeaderField[] };

/** Reads the From fields of one message, chunk by chunk. */
export class FromFieldReader {
  readonly #splitter = new HeaderSplitter(DEFAULT_MAX_HEADER_BYTES);
  #isTooLarge = false;

  /** The next bytes of the message; nothing is kept once the header section ended. */
  push(chunk: Uint8Array): void {
    if (this.#isTooLarge || this.#splitter.isHeaderComplete) return;
    if (!this.#splitter.push(chunk).ok) this.#isTooLarge = true;
  }

  /** The message ended. */
  end(): FromFields {
    if (this.#isTooLarge || !this.#splitter.end().ok) return { kind: "unreadable" };
    const froms = this.#splitter.fields().filter((f) => f.name.toLowerCase() === "from");
    return { kind: "read", froms };
  }
}
