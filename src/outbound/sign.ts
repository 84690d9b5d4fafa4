/**
 * DKIM on the way out: reads a message's body once through the signer (memory bounded by the
 * header section), then returns the same message with the DKIM-Signature fields in front. The
 * signing domain is the From header's; a message from a domain without keys, or whose header
 * section cannot be signed, goes out unchanged. One whose body or whose domain's keys cannot be
 * read is returned with a body that fails again (the sender defers it), never unsigned.
 */
import { authorDomain, type DkimKey, DkimSigner } from "../dkim/signer.ts";
import type { OutboundMessage } from "../smtp/sender.ts";
import { errorText } from "../errors.ts";
import { loadNodeCrypto } from "../auth/node_crypto.ts";

/** The message with its signatures, and which domain signed (undefined: unsigned). */
export interface SignedMessage<M extends OutboundMessage> {
  readonly message: M;
  readonly signedBy: string | undefined;
}

/** Signs `message` with the keys `keysFor` returns for its From domain. */
export async function signOutbound<M extends OutboundMessage>(
  message: M,
  keysFor: (domain: string) => Promise<readonly DkimKey[]>,
  now: Date = new Date(),
): Promise<SignedMessage<M>> {
  await loadNodeCrypto(); // the signer's body hash
  const signer = new DkimSigner();
  try {
    for await (const chunk of message.readBody()) signer.update(chunk);
  } catch (err) {
    // Not sent, signed or not: its body check fails the same way and defers it by the retry
    // schedule (message_unreadable). A throw here failed the whole batch, and the message
    // stayed due in front of its domain's other mail (review rev14 F2).
    return { message: { ...message, readBody: () => failedRead(err) }, signedBy: undefined };
  }
  const fields = signer.headerFields();
  const domain = fields === undefined ? undefined : authorDomain(fields);
  if (domain === undefined) return { message, signedBy: undefined };
  let keys: readonly DkimKey[];
  try {
    keys = await keysFor(domain);
  } catch (err) {
    // Keys there but not readable (a file that does not parse, a store that does not answer):
    // deferred like an unreadable body, never sent unsigned; the batch goes on past it.
    const why = new Error(`DKIM keys of ${domain} unreadable: ${errorText(err)}`);
    return { message: { ...message, readBody: () => failedRead(why) }, signedBy: undefined };
  }
  // Off the event loop: an RSA signature takes milliseconds (src/dkim/_async_sign.ts).
  const result = await signer.finish(keys, now);
  if (!result.ok) return { message, signedBy: undefined };
  const prefix = result.fields;
  const signed: M = {
    ...message,
    size: message.size + prefix.length,
    async *readBody() {
      yield prefix;
      yield* message.readBody();
    },
  };
  return { message: signed, signedBy: domain };
}

/** A body read that fails with `err` (as the first one did: never sent unsigned). */
// deno-lint-ignore require-yield -- it only throws
async function* failedRead(err: unknown): AsyncGenerator<Uint8Array> {
  throw err;
}
