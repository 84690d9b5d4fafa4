/**
 * The receiver's command table: for each verb, the states it is allowed in, the reply when it
 * comes in another, whether it ends a pipelined group (RFC 2920 §3.1), and its handler. The
 * loop in receiver.ts looks a verb up here and applies the handler's Outcome.
 */
import type { Reply } from "../wire/reply.ts";
import { REPLIES } from "../wire/replies.ts";
import type { StateKind } from "./_receiver_checks.ts";
import { handleHello, handleRset } from "./_receiver_hello.ts";
import { handleMail, handleRcpt } from "./_receiver_mail.ts";
import { handleBdat, handleData } from "./_receiver_body.ts";
import { handleStartTls } from "./_receiver_starttls.ts";
import { handleAuth } from "./_receiver_auth.ts";
import { endWith, say } from "./_receiver_outcome.ts";
import type { Outcome, ReceiverContext } from "./_receiver_types.ts";

export type Verb =
  | "EHLO"
  | "HELO"
  | "MAIL"
  | "RCPT"
  | "DATA"
  | "BDAT"
  | "RSET"
  | "NOOP"
  | "QUIT"
  | "VRFY"
  | "HELP"
  | "STARTTLS"
  | "AUTH";

export interface CommandSpec {
  readonly states: readonly StateKind[];
  /** Reply when the verb comes in another state. */
  readonly outOfState: Reply;
  /** Group-ending command (RFC 2920 §3.1): replies are flushed after it. */
  readonly flush: boolean;
  readonly run: (ctx: ReceiverContext, args: string) => Outcome | Promise<Outcome>;
}

const ALL: readonly StateKind[] = ["greeted", "ready", "inTransaction"];
const GREETED: readonly StateKind[] = ["ready", "inTransaction"];
const BAD = REPLIES.badSequence;

const COMMANDS: { readonly [V in Verb]: CommandSpec } = {
  EHLO: { states: ALL, outOfState: BAD, flush: true, run: (c, a) => handleHello(c, a, true) },
  HELO: { states: ALL, outOfState: BAD, flush: true, run: (c, a) => handleHello(c, a, false) },
  MAIL: { states: ["ready"], outOfState: REPLIES.nestedMail, flush: false, run: handleMail },
  RCPT: { states: ["inTransaction"], outOfState: REPLIES.mailFirst, flush: false, run: handleRcpt },
  DATA: { states: ["inTransaction"], outOfState: REPLIES.mailFirst, flush: true, run: handleData },
  // BDAT decides its state itself: its octets must be consumed in every state (RFC 3030 §3).
  BDAT: { states: ALL, outOfState: BAD, flush: false, run: handleBdat },
  RSET: { states: ALL, outOfState: BAD, flush: false, run: handleRset },
  NOOP: { states: ALL, outOfState: BAD, flush: true, run: () => say(REPLIES.ok) },
  QUIT: { states: ALL, outOfState: BAD, flush: true, run: () => endWith("quit", REPLIES.bye) },
  VRFY: { states: ALL, outOfState: BAD, flush: true, run: () => say(REPLIES.vrfy) },
  HELP: { states: ALL, outOfState: BAD, flush: false, run: () => say(REPLIES.help) },
  STARTTLS: { states: ["greeted", "ready"], outOfState: BAD, flush: true, run: handleStartTls },
  // Decides its state itself: without an auth hook (the MX) AUTH is unknown in every state.
  AUTH: { states: ALL, outOfState: BAD, flush: true, run: handleAuth },
};

/** The table by verb: a Map lookup costs less than Object.hasOwn on the table at every command. */
export const SPECS: ReadonlyMap<string, CommandSpec> = new Map(Object.entries(COMMANDS));

/** The reply to `spec`'s verb in a state it is not allowed in: before EHLO/HELO, "say hello first". */
export function outOfStateReply(spec: CommandSpec, state: StateKind): Reply {
  return state === "greeted" && GREETED.some((k) => spec.states.includes(k))
    ? REPLIES.heloFirst
    : spec.outOfState;
}
