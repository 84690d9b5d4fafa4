/**
 * A final reply the SMTP server role holds before it is known (receiver.ts): a sink's
 * `finishLater` answers the end of data while the client's next commands are handled.
 */
import type { Reply } from "../wire/reply.ts";
import { replyBytes } from "../wire/replies.ts";
import { concatBytes } from "../wire/bytes.ts";

/**
 * A final reply still to come (`Outcome.later`), held among the replies: `reply` is set once it
 * came, so a flush sees without waiting which held replies are known.
 */
export class LaterReply {
  reply: Reply | undefined;
  readonly came: Promise<Reply>;

  constructor(later: Promise<Reply>, onReply: (r: Reply) => void) {
    this.came = later.then((r) => {
      this.reply = r;
      onReply(r);
      return r;
    });
  }
}

/** A held reply, or a slot past the held ones. */
export type Held = Reply | LaterReply | undefined;

/**
 * The replies known already at the head of `held` (its first `count` slots), up to the first
 * final reply still to come, as one write; undefined when the first is one.
 */
export function knownHead(
  held: readonly Held[],
  count: number,
): { readonly bytes: Uint8Array; readonly taken: number } | undefined {
  const parts: Uint8Array[] = [];
  for (let i = 0; i < count; i++) {
    const r = held[i];
    const known = r instanceof LaterReply ? r.reply : r;
    if (known === undefined) break;
    parts.push(replyBytes(known));
  }
  return parts.length === 0 ? undefined : { bytes: concatBytes(parts), taken: parts.length };
}
