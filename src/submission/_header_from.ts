/**
 * The From fields of a submitted message, read from its header section as it streams (the
 * body passes unread; the section is held up to the DKIM signer's limit, as the signer holds
 * it). The submission sink refuses on what it finds (sink.ts).
 */
import { type HeaderField, HeaderSplitter } from "../dkim/header_section.ts";
import { DEFAULT_MAX_HEADER_BYTES } from "../dkim/signer.ts";
import { normalizeDomain } from "../auth/domain.ts";
import { mailboxListAddresses } from "../wire/mailbox_list.ts";

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

/**
 * True when every mailbox of the From fields is in one of `domains` (lower-case A-labels) and
 * there is at least one. Only each mailbox's addr-spec counts (the identity DMARC aligns and a
 * receiver checks), parsed as RFC 5322 says (src/wire/mailbox_list.ts): an address written in a
 * display name or a comment is text, not a mailbox. A field that is no mailbox-list (a group,
 * an unclosed quote or bracket, words after the address), without an address, with an address
 * literal or a name that is no host name fails.
 */
export function isOwnedAuthor(froms: readonly HeaderField[], domains: readonly string[]): boolean {
  for (const field of froms) {
    const raw = field.raw;
    const specs = mailboxListAddresses(utf8.decode(raw.subarray(raw.indexOf(0x3a) + 1)));
    if (specs === undefined || specs.length === 0) return false;
    for (const spec of specs) {
      const domain = normalizeDomain(spec.domain);
      if (domain === undefined || !domains.includes(domain)) return false;
    }
  }
  return true;
}
