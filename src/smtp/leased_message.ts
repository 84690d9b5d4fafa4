/**
 * A queued message as the sender takes it: the envelope from the queue row, the body read
 * through the lease that holds it. Used by the ODMR drain and by outbound delivery.
 */
import type { Lease, QueuedMessage } from "../queue/types.ts";
import type { OutboundMessage } from "./_sender_types.ts";

/** An outbound message that remembers the queued row it settles. */
export type LeasedMessage = OutboundMessage & { readonly queued: QueuedMessage };

/** `message` as the sender takes it; its body is read through `lease`. */
export function leasedMessage(
  message: QueuedMessage,
  lease: Pick<Lease, "readBody">,
): LeasedMessage {
  return {
    queued: message,
    mailFrom: message.mailFrom,
    params: message.params,
    size: message.size,
    recipients: message.recipients.map((r) => ({
      id: r.id,
      address: r.address,
      ...(r.notify !== undefined ? { notify: r.notify } : {}),
      ...(r.orcpt !== undefined ? { orcpt: r.orcpt } : {}),
    })),
    readBody: () => lease.readBody(message.id),
  };
}
