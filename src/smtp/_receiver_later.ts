/**
 * A final reply the SMTP server role holds before it is known (receiver.ts): a sink's
 * `finishLater` answers the end of data while the client's next commands are handled.
 */
import type { Reply } from "../wire/reply.ts";

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
