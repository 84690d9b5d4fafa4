/**
 * The From fields of a submitted message, read from its header section as it streams (the
 * body passes unread; the section is held up to the DKIM signer's limit, as the signer holds
 * it). The submission sink refuses on what it finds (sink.ts).
 */
import { type HeaderField, HeaderSplitter } from "../dkim/header_section.ts";
import { DEFAULT_MAX_HEADER_BYTES } from "../dkim/signer.ts";
import { normalizeDomain } from "../auth/domain.ts";

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

const utf8 = new TextDecoder();
/** The characters a domain after an `@` may hold (a U-label's too, RFC 6532). */
const DOMAIN_RUN = /^[A-Za-z0-9.\u0080-\uffff-]*/;

/**
 * True when every `@` in the From fields is followed by one of `domains` (lower-case A-labels)
 * and there is at least one: the domain of every mailbox, and of anything that looks like one in
 * a display name or comment (refused rather than parsed: a reader may be shown it). A field
 * without an address, an address literal or a name that is no host name fails.
 */
export function isOwnedAuthor(froms: readonly HeaderField[], domains: readonly string[]): boolean {
  for (const field of froms) {
    const raw = field.raw;
    const value = utf8.decode(raw.subarray(raw.indexOf(0x3a) + 1));
    const parts = value.split("@");
    if (parts.length < 2) return false;
    for (const after of parts.slice(1)) {
      const domain = normalizeDomain(DOMAIN_RUN.exec(after)?.[0] ?? "");
      if (domain === undefined || !domains.includes(domain)) return false;
    }
  }
  return true;
}
