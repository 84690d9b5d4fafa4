/**
 * AUTH on the SMTP server role (RFC 4954), for a receiver with an auth hook (the submission
 * port): the exchange, its throttle and its logs are the hook's; this module turns the hook's
 * result into an Outcome (the proved user, a refusal, or the end). Without a hook (the MX)
 * AUTH is an unknown command.
 */
import { REPLIES } from "../wire/replies.ts";
import { endWith, mistake, say } from "./_receiver_outcome.ts";
import type { Outcome, ReceiverContext } from "./_receiver_types.ts";

/** `AUTH mechanism [initial-response]`; decides its states itself. */
export async function handleAuth(ctx: ReceiverContext, args: string): Promise<Outcome> {
  const auth = ctx.options.auth;
  if (auth === undefined) return mistake(REPLIES.unknownCommand);
  if (ctx.state.kind === "greeted") return mistake(REPLIES.heloFirst);
  // RFC 4954 §4: AUTH is not permitted during a mail transaction.
  if (ctx.state.kind === "inTransaction") return mistake(REPLIES.badSequence);
  if (ctx.authenticatedUser !== undefined) return mistake(REPLIES.alreadyAuthenticated);
  const offered = auth.mechanisms(ctx.conn.isSecure);
  // The exchange writes its `334` lines itself: what the commands before it were answered
  // goes first (RFC 4954 §4 lets AUTH end a pipelined group).
  await ctx.flushReplies();
  const result = await auth.authenticate(args, { conn: ctx.conn, reader: ctx.reader, offered });
  switch (result.kind) {
    case "success":
      return { replies: [result.reply], user: result.user };
    case "refused":
      return result.isProtocolError ? mistake(result.reply) : say(result.reply);
    case "end": {
      const reason = result.reason ?? "tooManyErrors";
      return result.reply !== undefined ? endWith(reason, result.reply) : endWith(reason);
    }
    default: {
      const never: never = result;
      throw new Error(`unhandled auth result ${JSON.stringify(never)}`);
    }
  }
}
