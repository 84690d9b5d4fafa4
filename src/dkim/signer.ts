/**
 * DKIM signer (RFC 6376 §5; ed25519-sha256 from RFC 8463): takes a message chunk by chunk,
 * hashes the canonical body as it streams (memory bounded by the header limit) and, at the end,
 * returns one DKIM-Signature field per key, to be prepended to the message unchanged.
 * It never alters the message. Which keys sign is the caller's choice (see `authorDomain`).
 */
import type crypto from "node:crypto";
import { BodyCanonicalizer, type Canonicalization, canonicalizeHeader } from "./canon.ts";
import type { HeaderField } from "./canon.ts";
import { HeaderSplitter } from "./_headers.ts";
import { concatBytes } from "../wire/bytes.ts";
import { encodeBase64 } from "../wire/base64.ts";
import { nodeCrypto } from "../auth/node_crypto.ts";
import { signOffThread } from "./_async_sign.ts";
import { normalizeDomain } from "../auth/domain.ts";
import { mailboxListAddresses } from "../wire/mailbox_list.ts";

/** Signing algorithms (RFC 6376 §3.3, RFC 8463 §3). */
export type DkimAlgorithm = "rsa-sha256" | "ed25519-sha256";

/** A private key ready to sign for `domain` under `selector`. */
export interface DkimKey {
  readonly domain: string;
  readonly selector: string;
  readonly algorithm: DkimAlgorithm;
  readonly privateKey: crypto.KeyObject;
}

/** Header and body canonicalization (the `c=` tag). */
export interface CanonicalizationPair {
  readonly header: Canonicalization;
  readonly body: Canonicalization;
}

/** Signer settings; every field has a default. */
export interface DkimSignerOptions {
  /** Default relaxed/relaxed: survives the re-folding and whitespace changes relays do. */
  readonly canonicalization?: CanonicalizationPair;
  /** Largest header section signed; a larger one is refused. Default 1 MiB. */
  readonly maxHeaderBytes?: number;
  /** Header names to sign when present (lower case); default `SIGNED_HEADERS`. */
  readonly signedHeaders?: readonly string[];
}

/** Result of `finish`: the DKIM-Signature fields (each ending in CRLF), or why not. */
export type SignResult =
  | { readonly ok: true; readonly fields: Uint8Array }
  | { readonly ok: false; readonly reason: "header_too_large" | "no_key" };

/**
 * Fields signed when present. RFC 6376 §5.4.1: From is required; the rest are those whose
 * change would alter what the reader sees or how replies go.
 */
export const SIGNED_HEADERS: readonly string[] = [
  "from",
  "reply-to",
  "subject",
  "date",
  "to",
  "cc",
  "message-id",
  "in-reply-to",
  "references",
  "mime-version",
  "content-type",
  "content-transfer-encoding",
  "content-disposition",
  "sender",
  "list-id",
  "list-unsubscribe",
  "list-unsubscribe-post",
];

/**
 * Signed fields that a mailing list or a forwarder may legitimately add; every other signed
 * field is signed once more than it occurs (§8.15 "over-signing"), so an instance added later
 * by someone else breaks the signature instead of being shown to the reader.
 */
const NOT_OVERSIGNED = new Set([
  "in-reply-to",
  "references",
  "content-disposition",
  "list-id",
  "list-unsubscribe",
  "list-unsubscribe-post",
]);

/** The header section a signer reads (and a reader of its From fields: submission). */
export const DEFAULT_MAX_HEADER_BYTES = 1024 * 1024;
const FOLD_COLUMNS = 76;
const encoder = new TextEncoder();

/**
 * Streams one message through the body hash; `finish` signs it with the given keys. Created
 * after `loadNodeCrypto()` (the body hash is node:crypto's).
 */
export class DkimSigner {
  readonly #canon: CanonicalizationPair;
  readonly #signedHeaders: readonly string[];
  readonly #splitter: HeaderSplitter;
  readonly #bodyHash = nodeCrypto().createHash("sha256");
  readonly #body: BodyCanonicalizer;
  #failure: "header_too_large" | undefined;
  #isEnded = false;

  constructor(opts: DkimSignerOptions = {}) {
    this.#canon = opts.canonicalization ?? { header: "relaxed", body: "relaxed" };
    this.#signedHeaders = opts.signedHeaders ?? SIGNED_HEADERS;
    this.#splitter = new HeaderSplitter(opts.maxHeaderBytes ?? DEFAULT_MAX_HEADER_BYTES);
    this.#body = new BodyCanonicalizer(this.#canon.body, (b) => this.#bodyHash.update(b));
  }

  /** Feeds the next bytes of the message (header section first, then the body). */
  update(chunk: Uint8Array): void {
    if (this.#failure !== undefined) return;
    if (this.#isEnded) throw new Error("DkimSigner.update() after the end of the message");
    const split = this.#splitter.push(chunk);
    if (!split.ok) {
      this.#failure = split.reason;
      return;
    }
    if (split.body.length > 0) this.#body.update(split.body);
  }

  /** The header fields (the whole message must have been fed); undefined after a failure. */
  headerFields(): readonly HeaderField[] | undefined {
    this.#end();
    return this.#failure === undefined ? this.#splitter.fields() : undefined;
  }

  /**
   * Signs with each key (one field per key, in order); `now` fills the `t=` tag. The signatures
   * are computed off the event loop (src/dkim/_async_sign.ts): an RSA signature takes
   * milliseconds, and serve's sessions go on meanwhile.
   */
  async finish(keys: readonly DkimKey[], now: Date): Promise<SignResult> {
    const inputs = this.#inputs(keys, now);
    if (!inputs.ok) return inputs;
    const parts = await Promise.all(inputs.each.map(async ({ key, toSign }) => {
      const data = bytesToSign(key, toSign.data);
      return signedField(toSign, await signOffThread(key.algorithm, key.privateKey, data));
    }));
    return { ok: true, fields: concatBytes(parts) };
  }

  #inputs(
    keys: readonly DkimKey[],
    now: Date,
  ):
    | { readonly ok: true; readonly each: { key: DkimKey; toSign: ToSign }[] }
    | Extract<SignResult, { ok: false }> {
    this.#end();
    if (this.#failure !== undefined) return { ok: false, reason: this.#failure };
    if (keys.length === 0) return { ok: false, reason: "no_key" };
    const bh = this.#bodyHash.digest("base64");
    const fields = this.#splitter.fields();
    const names = headerList(fields, this.#signedHeaders);
    const input = { fields, names, bh, canon: this.#canon, now };
    return { ok: true, each: keys.map((key) => ({ key, toSign: dataToSign(key, input) })) };
  }

  #end(): void {
    if (this.#isEnded || this.#failure !== undefined) return;
    this.#isEnded = true;
    const split = this.#splitter.end();
    if (!split.ok) {
      this.#failure = split.reason;
      return;
    }
    this.#body.finish();
  }
}

interface SignInput {
  readonly fields: readonly HeaderField[];
  readonly names: readonly string[];
  readonly bh: string;
  readonly canon: CanonicalizationPair;
  readonly now: Date;
}

/** One signature field before its `b=` value: the field text so far and the bytes to sign. */
interface ToSign {
  readonly unsigned: string;
  readonly data: Uint8Array;
}

function dataToSign(key: DkimKey, input: SignInput): ToSign {
  const tags = [
    "v=1",
    `a=${key.algorithm}`,
    `c=${input.canon.header}/${input.canon.body}`,
    `d=${key.domain}`,
    `s=${key.selector}`,
    `t=${Math.floor(input.now.getTime() / 1000)}`,
    `h=${input.names.join(":")}`,
    `bh=${input.bh}`,
  ];
  // b= comes last and is folded on its own: its value (with its whitespace) is what a verifier
  // deletes before hashing this field (§3.5 b=, §3.7).
  const unsigned = `DKIM-Signature: ${foldTags(tags)};\r\n b=`;
  const data: Uint8Array[] = [];
  for (const field of selectHeaders(input.fields, input.names)) {
    data.push(canonicalizeHeader(field, input.canon.header));
  }
  const self = canonicalizeHeader(
    { name: "DKIM-Signature", raw: encoder.encode(unsigned) },
    input.canon.header,
  );
  // The signature field itself is hashed without its final CRLF (§3.7).
  data.push(input.canon.header === "relaxed" ? self.subarray(0, self.length - 2) : self);
  return { unsigned, data: concatBytes(data) };
}

/**
 * The bytes the key signs: rsa-sha256 signs the data itself (RSASSA-PKCS1-v1_5 over its SHA-256,
 * RFC 6376 §3.3.1), ed25519-sha256 the SHA-256 digest of the data (PureEdDSA, RFC 8463 §3).
 */
function bytesToSign(key: DkimKey, data: Uint8Array): Uint8Array {
  return key.algorithm === "rsa-sha256"
    ? data
    : new Uint8Array(nodeCrypto().createHash("sha256").update(data).digest());
}

/** The complete field: its text with the folded base64 signature as `b=`. */
function signedField(toSign: ToSign, signature: Uint8Array): Uint8Array {
  const b64 = encodeBase64(signature);
  return encoder.encode(`${toSign.unsigned}${foldValue(b64, 4)}\r\n`);
}

/**
 * The `h=` list: each signed name as many times as it occurs (bottom-up selection, §5.4.2),
 * plus one more for over-signed names.
 */
function headerList(fields: readonly HeaderField[], signed: readonly string[]): string[] {
  const counts = new Map<string, number>();
  for (const f of fields) {
    const n = f.name.toLowerCase();
    counts.set(n, (counts.get(n) ?? 0) + 1);
  }
  const names: string[] = [];
  for (const name of signed) {
    const n = (counts.get(name) ?? 0) + (NOT_OVERSIGNED.has(name) ? 0 : 1);
    for (let i = 0; i < n; i++) names.push(name);
  }
  return names;
}

/** The fields named by `h=`, each instance taken from the bottom up (§5.4.2). */
function selectHeaders(fields: readonly HeaderField[], names: readonly string[]): HeaderField[] {
  const used = new Map<string, number>();
  const picked: HeaderField[] = [];
  for (const name of names) {
    const skip = used.get(name) ?? 0;
    used.set(name, skip + 1);
    let seen = 0;
    for (let i = fields.length - 1; i >= 0; i--) {
      const f = fields[i] as HeaderField;
      if (f.name.toLowerCase() !== name) continue;
      if (seen++ === skip) {
        picked.push(f);
        break;
      }
    }
    // A name with no instance left contributes nothing: that is what over-signing relies on.
  }
  return picked;
}

/**
 * Joins the tags with "; ", folding lines at 76 columns. `h=` may fold before any of its
 * colons (FWS is allowed there, RFC 6376 §3.5); the other tags are short and stay whole.
 */
function foldTags(tags: readonly string[]): string {
  let out = "";
  let column = "DKIM-Signature: ".length;
  const add = (text: string, canFoldBefore: boolean) => {
    let piece = text;
    if (canFoldBefore && column + piece.length > FOLD_COLUMNS) {
      out += "\r\n ";
      column = 1;
      piece = piece.trimStart();
    }
    out += piece;
    column += piece.length;
  };
  for (const [i, tag] of tags.entries()) {
    if (i > 0) add(";", false);
    const pieces = tag.startsWith("h=") ? tag.split(/(?=:)/) : [tag];
    for (const [j, piece] of pieces.entries()) add(i > 0 && j === 0 ? ` ${piece}` : piece, i > 0);
  }
  return out;
}

/** Splits a base64 value into folded lines (whitespace inside b= and bh= is ignored, §3.5). */
function foldValue(value: string, firstColumn: number): string {
  const lines: string[] = [];
  let at = 0;
  let width = FOLD_COLUMNS - firstColumn;
  while (at < value.length) {
    lines.push(value.slice(at, at + width));
    at += width;
    width = FOLD_COLUMNS - 1;
  }
  return lines.join("\r\n ");
}

/**
 * The domain of the first From mailbox's addr-spec (lower case, a U-label as its A-label), the
 * usual DKIM `d=` for DMARC alignment. The field is read as an RFC 5322 mailbox-list
 * (src/wire/mailbox_list.ts, as submission's From check reads it): an address written in a
 * display name or a comment is text, never the domain. Undefined when there is no From field,
 * no mailbox in it, when it is no mailbox-list (a group, words after the address), and when
 * there is more than one From field (RFC 5322 §3.6 allows one: signing with the first one's
 * domain would vouch for a message a reader may see from the other).
 */
export function authorDomain(fields: readonly HeaderField[]): string | undefined {
  const froms = fields.filter((f) => f.name.toLowerCase() === "from");
  const from = froms.length === 1 ? froms[0] : undefined;
  if (from === undefined) return undefined;
  const value = new TextDecoder().decode(from.raw.subarray(from.raw.indexOf(58) + 1));
  const domain = mailboxListAddresses(value)?.[0]?.domain;
  if (domain === undefined) return undefined;
  // RFC 6532 (SMTPUTF8 mail): a U-label domain signs as its A-label, the form keys are kept in.
  if (/[^ -~]/.test(domain)) return normalizeDomain(domain);
  return domain.toLowerCase().replace(/\.$/, "");
}
