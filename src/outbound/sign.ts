/**
 * DKIM on the way out: reads a message's body once through the signer (memory bounded by the
 * header section), then returns the same message with the DKIM-Signature fields in front. The
 * signing domain is the From header's; a message from a domain without keys, or whose header
 * section cannot be signed, goes out unchanged.
 */
import { authorDomain, type DkimKey, DkimSigner } from "../dkim/signer.ts";
import type { OutboundMessage } from "../smtp/sender.ts";

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
  const signer = new DkimSigner();
  for await (const chunk of message.readBody()) signer.update(chunk);
  const fields = signer.headerFields();
  const domain = fields === undefined ? undefined : authorDomain(fields);
  if (domain === undefined) return { message, signedBy: undefined };
  // Off the event loop: an RSA signature takes milliseconds (src/dkim/_async_sign.ts).
  const result = await signer.finish(await keysFor(domain), now);
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
