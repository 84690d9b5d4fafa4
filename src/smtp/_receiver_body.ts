/**
 * DATA and BDAT of the SMTP server role: the body streams from the reader to the sink under a
 * total deadline, the same line check applies to both, and the end of data returns the sink's
 * reply as an Outcome (the loop in receiver.ts applies it: accepted, or the transaction is left
 * and aborted). A sink that throws is a bug path: logged, and the peer gets `451 4.3.0`.
 */
import type { Reply } from "../wire/reply.ts";
import { isPositive, isTransient, reply } from "../wire/reply.ts";
import { bdatChunkReply, REPLIES } from "../wire/replies.ts";
import { formatReceived } from "./trace.ts";
import { MAX_RECEIVED_FIELDS } from "../wire/received_count.ts";
import type { DataFault } from "../wire/data_decoder.ts";
import { checkBdat, checkBdatState, checkData } from "./_receiver_checks.ts";
import type { SessionState, Transaction } from "./_receiver_checks.ts";
import { DEFAULT_MAX_DATA_LINE_BYTES } from "./_receiver_mail.ts";
import { endWith, idle, leaveTransaction, mistake, say } from "./_receiver_outcome.ts";
import type { Outcome, ReceiverContext } from "./_receiver_types.ts";

/**
 * Slowloris in DATA: `dataTimeoutMs` bounds each read, so a byte every `timeout - ε` held a
 * session for as long as the body could grow. A body gets at most the longer of 10 minutes
 * and `maxMessageBytes` at 10 KB/s (≈ 80 kbit/s: a largest message still gets through a slow
 * link; 50 MB → ~85 min), then `421 4.4.2` and the session ends with nothing stored.
 */
export const MIN_DATA_DEADLINE_MS = 10 * 60_000;
/** The slowest body rate a legitimate sender is granted for a largest message. */
export const MIN_DATA_BYTES_PER_SECOND = 10 * 1024;

/** The total deadline for one body under a `maxMessageBytes` limit. */
export function dataDeadlineMs(maxMessageBytes: number): number {
  const forSize = Math.ceil(maxMessageBytes / MIN_DATA_BYTES_PER_SECOND) * 1000;
  return Math.max(MIN_DATA_DEADLINE_MS, forSize);
}

const DATA_DEADLINE_REPLY = reply(421, "4.4.2", "Message took too long, closing connection");

function traceHeader(ctx: ReceiverContext, tx: Transaction): Uint8Array {
  const info = ctx.sessionInfo;
  const only = tx.recipients.length === 1 ? tx.recipients[0] : undefined;
  return formatReceived({
    heloName: info.heloName,
    remoteAddress: info.remoteAddress,
    hostname: ctx.options.hostname,
    // RFC 6531 §4.3: with SMTPUTF8 the protocol is UTF8SMTP (…S, …A, …SA), as Postfix writes it.
    protocol: tx.mail.params.smtputf8 === true
      ? info.protocol.replace("ESMTP", "UTF8SMTP")
      : info.protocol,
    id: tx.sink.id,
    ...(only !== undefined ? { recipient: only.address } : {}),
    date: (ctx.options.now ?? (() => new Date()))(),
  });
}

/**
 * A consumer that writes to the sink until the first failure, then drops the rest; `stop()`
 * drops everything later and waits for the write in flight (before the sink is aborted).
 */
function sinkWriter(ctx: ReceiverContext, tx: Transaction) {
  const state: { error: unknown; failed: boolean } = { error: undefined, failed: false };
  let isStopped = false;
  let inFlight: Promise<void> = Promise.resolve();
  const writeOne = async (chunk: Uint8Array): Promise<void> => {
    try {
      await tx.sink.write(chunk);
    } catch (err) {
      state.failed = true;
      state.error = err;
      ctx.log.error("sink_failed", { call: "write", id: tx.sink.id, error: String(err) });
    }
  };
  const write = (chunk: Uint8Array): Promise<void> => {
    if (state.failed || isStopped) return Promise.resolve();
    tx.received.push(chunk);
    inFlight = writeOne(chunk);
    return inFlight;
  };
  const stop = (): Promise<void> => {
    isStopped = true;
    return inFlight;
  };
  return { write, state, stop };
}

/**
 * When the body that starts now must have ended (`performance.now()` time): the reader cuts each of
 * its reads to it, so no timer is armed per message.
 */
function bodyDeadlineAt(ctx: ReceiverContext): number {
  return performance.now() +
    (ctx.options.dataDeadlineMs ?? dataDeadlineMs(ctx.options.maxMessageBytes));
}

/**
 * A body, or a chunk read only to stay in step, that did not end: the stream did, or its deadline
 * passed (`421 4.4.2`; the sink, if any: a refused chunk has none, gets no more bytes). Either way
 * the transaction is left and the session ends. The one answer for DATA, BDAT and a skipped chunk.
 */
async function streamEnded(
  ctx: ReceiverContext,
  s: SessionState,
  how: "DATA" | "BDAT",
  what: "deadline" | "eof",
  out: ReturnType<typeof sinkWriter> | undefined,
): Promise<Outcome> {
  if (what === "eof") {
    return { ...leaveTransaction(s, `end of stream in ${how}`), ...endWith("eof") };
  }
  await out?.stop();
  ctx.log.warn("smtp_data_deadline", {
    deadlineMs: ctx.options.dataDeadlineMs ?? dataDeadlineMs(ctx.options.maxMessageBytes),
    ...(out === undefined ? { refused: true } : {}),
  });
  return { ...leaveTransaction(s, `${how} deadline`), ...endWith("timeout", DATA_DEADLINE_REPLY) };
}

/**
 * Debug: the sink logs each accepted message for operators (the MX's `queued` line, the
 * customer's `delivered`); a second info line per message cost the MX's ingest. Its fields (the
 * sink's id is made when first asked for) are built only when the line is written.
 */
function logReceived(ctx: ReceiverContext, tx: Transaction, size: number): void {
  if (ctx.log.isEnabled?.("debug") === false) return;
  ctx.log.debug("smtp_message_received", {
    id: tx.sink.id,
    size,
    recipients: tx.recipients.length,
  });
}

/**
 * The end of a body: the sink's reply (or PRDR replies), or 451 when it throws. Accepted, the
 * session goes back to `ready` with the message counted; refused, the transaction is left.
 */
async function finishTransaction(
  ctx: ReceiverContext,
  s: Extract<SessionState, { kind: "inTransaction" }>,
  size: number,
): Promise<Outcome> {
  const tx = s.tx;
  if (ctx.options.stopAtInputEnd === true && ctx.conn.inputEnded === true) {
    // The client is gone without a reply to this body: it sends it again (see the option).
    ctx.log.info("smtp_client_gone", { state: "end of data" });
    return { ...leaveTransaction(s, "client gone"), ...endWith("lost") };
  }
  if (tx.received.count >= MAX_RECEIVED_FIELDS) {
    // RFC 5321 §6.3: a mail loop; refused, as a failed message, before the sink commits it.
    ctx.options.events?.messageRefused("loop");
    return { ...leaveTransaction(s, "mail loop"), replies: [REPLIES.tooManyHops] };
  }
  const replies: Reply[] = [];
  let r: Reply;
  if (tx.sink.finishLater !== undefined && tx.mail.prdr !== true && ctx.reader.unreadBytes > 0) {
    return await finishLater(ctx, s, size, tx.sink.finishLater.bind(tx.sink));
  }
  try {
    const each = tx.mail.prdr === true && tx.sink.finishEach !== undefined
      ? await tx.sink.finishEach()
      : undefined;
    if (each !== undefined) {
      // draft-hall-prdr-00: 353, then one reply per accepted recipient, then the final reply.
      replies.push(REPLIES.prdrBegins, ...each);
      r = prdrFinal(each);
    } else {
      r = await tx.sink.finish();
    }
  } catch (err) {
    ctx.log.error("sink_failed", { call: "finish", id: tx.sink.id, error: String(err) });
    r = REPLIES.localError;
  }
  replies.push(r);
  if (!isPositive(r)) return { ...leaveTransaction(s, "message refused"), replies };
  logReceived(ctx, tx, size);
  return {
    replies,
    next: { state: { kind: "ready", helo: s.helo }, why: "end of data" },
    accepted: true,
  };
}

/**
 * The end of data when the client's next commands are here already: the transaction is over
 * for the session (ready for the next MAIL) while the sink's final reply is still to come.
 */
async function finishLater(
  ctx: ReceiverContext,
  s: Extract<SessionState, { kind: "inTransaction" }>,
  size: number,
  finish: () => Promise<{ readonly reply: Promise<Reply> }>,
): Promise<Outcome> {
  const tx = s.tx;
  let later: Promise<Reply>;
  try {
    later = (await finish()).reply;
  } catch (err) {
    ctx.log.error("sink_failed", { call: "finishLater", id: tx.sink.id, error: String(err) });
    return { ...leaveTransaction(s, "message refused"), replies: [REPLIES.localError] };
  }
  return {
    replies: [],
    later: later.then((r) => {
      if (isPositive(r)) logReceived(ctx, tx, size);
      return r;
    }, (err) => {
      ctx.log.error("sink_failed", { call: "finishLater", id: tx.sink.id, error: String(err) });
      return REPLIES.localError;
    }),
    next: { state: { kind: "ready", helo: s.helo }, why: "end of data" },
    accepted: true,
  };
}

/**
 * The reply after PRDR's per-recipient replies: 250 when the message went to at least one
 * recipient; else a recipient's refusal (a temporary one first: the client may try again).
 */
function prdrFinal(each: readonly Reply[]): Reply {
  if (each.some(isPositive)) return REPLIES.prdrAccepted;
  return each.find(isTransient) ?? each[0] ?? REPLIES.localError;
}

/**
 * The one answer to a refused body, for DATA and BDAT alike (#10: BDAT once skipped the
 * checks); the transaction is left. After a bare CR or LF in DATA the session ends, since the
 * peer and we may disagree on where the data ended (SMTP smuggling, docs/protocol.md §6.5);
 * BDAT framing is a byte count, so its session goes on.
 */
function refuseBody(
  ctx: ReceiverContext,
  s: SessionState,
  fault: DataFault,
  id: string,
  how: "DATA" | "BDAT",
): Outcome {
  const left = leaveTransaction(s, `${how} ${fault}`);
  switch (fault) {
    case "bareNewline":
      ctx.options.events?.messageRefused("content");
      ctx.log.warn("smtp_bare_newline", { where: how === "DATA" ? "data" : "bdat", id });
      return {
        ...left,
        replies: [REPLIES.bareNewlineData],
        ...(how === "DATA" ? { end: "bareNewline" } : {}),
      };
    case "lineTooLong":
      ctx.options.events?.messageRefused("content");
      return { ...left, replies: [REPLIES.dataLineTooLong] };
    case "tooBig":
      ctx.options.events?.messageRefused("size");
      return { ...left, replies: [REPLIES.sizeExceeded] };
    default: {
      const never: never = fault;
      throw new Error(`unhandled body fault ${never}`);
    }
  }
}

/**
 * DATA: 354, the body to its real end, then one reply (RFC 5321 §4.1.1.4). That reply is not
 * DATA's own (its 354 went out already): it waits for the rest of a pipelined group like
 * MAIL's and RCPT's (RFC 2920 §3.2), so ".", MAIL, RCPT and DATA get their replies in one write.
 */
export async function handleData(ctx: ReceiverContext, args: string): Promise<Outcome> {
  const s = ctx.state;
  if (s.kind !== "inTransaction") return mistake(REPLIES.mailFirst);
  const checked = checkData(s.tx, args);
  if (!checked.ok) return refusedEarly(checked.reply, "DATA");
  await ctx.sendNow(REPLIES.startData);
  return { ...(await receiveData(ctx, s)), flush: false };
}

/** The body of a DATA after its 354, to the end of the transaction. */
async function receiveData(
  ctx: ReceiverContext,
  s: Extract<SessionState, { kind: "inTransaction" }>,
): Promise<Outcome> {
  const tx = s.tx;
  const out = sinkWriter(ctx, tx);
  const deadlineAt = bodyDeadlineAt(ctx);
  if (ctx.options.addTraceHeader) await out.write(traceHeader(ctx, tx));
  const result = await ctx.reader.readData(
    {
      maxMessageBytes: ctx.options.maxMessageBytes,
      maxLineBytes: ctx.options.maxDataLineBytes ?? DEFAULT_MAX_DATA_LINE_BYTES,
    },
    out.write,
    ctx.options.dataTimeoutMs ?? ctx.options.commandTimeoutMs,
    deadlineAt,
  );
  switch (result.kind) {
    case "deadline":
    case "eof":
      return await streamEnded(ctx, s, "DATA", result.kind, out);
    case "rejected":
      return refuseBody(ctx, s, result.fault, tx.sink.id, "DATA");
    case "ok":
      if (out.state.failed) {
        return { ...leaveTransaction(s, "sink failed"), replies: [REPLIES.localError] };
      }
      return await finishTransaction(ctx, s, result.size);
    default: {
      const never: never = result;
      throw new Error(`unhandled data result ${JSON.stringify(never)}`);
    }
  }
}

/**
 * DATA or BDAT refused before any body: a mistake of the client's (its error budget), except
 * "no valid recipients", which a pipelining client cannot foresee: it sends DATA or BDAT behind
 * its RCPTs before their replies come (RFC 2920 §3.1). Counted as a mistake, 11 messages refused
 * whole in one session (a customer's local MTA refusing unknown users) ended a provider's drain.
 * A DATA so refused leaves its transaction open, so it spends the idle budget: on the MX, DATA
 * repeated forever (each answered 554) must end like any other loop that makes no progress. A
 * BDAT so refused ends its transaction: the next needs a MAIL, which the attempts budget counts
 * (session_budget.ts), so it costs nothing (an MX client that refused messages and reset after
 * each was cut at the 11th).
 */
function refusedEarly(r: Reply, how: "DATA" | "BDAT"): Outcome {
  if (r !== REPLIES.noValidRecipients) return mistake(r);
  return how === "DATA" ? idle(r) : say(r);
}

/**
 * Reads and drops a chunk announced by a refused BDAT (its envelope, its arguments, or its size
 * alone over what is left of the message's: handleBdat), to stay in sync (RFC 3030 §3); undefined
 * when it was read, else the session's end. The read has the total deadline of an accepted body:
 * with the per-read timeout only, `BDAT 999999999999999` trickled held a slot for ever, before
 * MAIL and AUTH. A chunk over `maxMessageBytes` is not read at all: no message it belongs to can
 * be taken, so reading it is only the peer's way to hold the slot; it is answered `552 5.3.4`
 * and the session ends (Postfix, too, stops reading past its message size limit).
 */
async function skipChunk(
  ctx: ReceiverContext,
  s: SessionState,
  octets: number,
): Promise<Outcome | undefined> {
  if (octets > ctx.options.maxMessageBytes) {
    ctx.log.warn("smtp_chunk_too_big", { octets, maxMessageBytes: ctx.options.maxMessageBytes });
    return {
      ...leaveTransaction(s, "BDAT chunk too big"),
      ...endWith("tooBig", REPLIES.chunkTooBig),
    };
  }
  const skipped = await ctx.reader.readExact(
    octets,
    () => {},
    ctx.options.dataTimeoutMs ?? ctx.options.commandTimeoutMs,
    bodyDeadlineAt(ctx),
    ctx.sendHeld,
  );
  return skipped === "ok" ? undefined : await streamEnded(ctx, s, "BDAT", skipped, undefined);
}

/** BDAT: exactly `octets` bytes, no unstuffing; LAST ends the transaction (RFC 3030). */
export async function handleBdat(ctx: ReceiverContext, args: string): Promise<Outcome> {
  const s0 = ctx.state;
  const cmd = checkBdat(args);
  if (!cmd.ok) {
    const ended = cmd.octets === undefined ? undefined : await skipChunk(ctx, s0, cmd.octets);
    return ended ?? { ...leaveTransaction(s0, "BDAT syntax"), ...mistake(cmd.reply) };
  }
  const { octets, isLast } = cmd.value;
  const st = checkBdatState(s0);
  if (!st.ok || s0.kind !== "inTransaction") {
    const ended = await skipChunk(ctx, s0, octets);
    if (ended !== undefined) return ended;
    // No recipient: the transaction ends here like any refused chunk's, so that after the reply
    // to a LAST nothing is open (wire/ehlo.ts LAST_ENDS_TRANSACTION; a client that pipelined
    // the next MAIL behind it gets it taken, never refused as nested).
    return {
      ...leaveTransaction(s0, "BDAT without recipients"),
      ...refusedEarly(st.ok ? REPLIES.mailFirst : st.reply, "BDAT"),
    };
  }
  const tx = st.value;
  const max = ctx.options.maxMessageBytes;
  if (octets > max - tx.chunkedBytes) {
    // The chunk alone makes the message too big: 552 before any of its octets, none stored
    // (RFC 3030: a failed chunk fails the message); skipped to stay in step, or over
    // `maxMessageBytes` not read at all. Read to its end, `BDAT 999999999999999` after a RCPT
    // streamed for the whole body deadline.
    ctx.options.events?.messageRefused("size");
    return await skipChunk(ctx, s0, octets) ??
      { ...leaveTransaction(s0, "BDAT too big"), replies: [REPLIES.sizeExceeded] };
  }
  const out = sinkWriter(ctx, tx);
  // One deadline for the message's chunks: each had its own, so `BDAT 1` with its octet just
  // before each timeout held a slot for `maxMessageBytes` chunks. Checked here too: a chunk whose
  // octets came with its command waits for no read, and reads check it only before they wait.
  const deadlineAt = tx.isChunking ? tx.chunksDeadlineAt : bodyDeadlineAt(ctx);
  if (tx.isChunking && performance.now() >= deadlineAt) {
    return await streamEnded(ctx, s0, "BDAT", "deadline", out);
  }
  if (!tx.isChunking && ctx.options.addTraceHeader) await out.write(traceHeader(ctx, tx));
  const read = await ctx.reader.readExact(
    octets,
    async (chunk) => {
      // The same line check as DATA, over every byte; the size fits (checked above).
      tx.bodyLines.push(chunk);
      if (tx.bodyLines.fault === undefined) await out.write(chunk);
    },
    ctx.options.dataTimeoutMs ?? ctx.options.commandTimeoutMs,
    deadlineAt,
    // Replies held for a pipelined group (the last message's 250) go out before a wait for the
    // peer, as between commands: a client may give up on them and send that message again.
    ctx.sendHeld,
  );
  if (read !== "ok") return await streamEnded(ctx, s0, "BDAT", read, out);
  if (isLast) tx.bodyLines.end();
  // A failed BDAT ends the transaction: later chunks get 503 until a new MAIL (RFC 3030 §3).
  const fault = tx.bodyLines.fault;
  if (fault !== undefined) return refuseBody(ctx, s0, fault, tx.sink.id, "BDAT");
  if (out.state.failed) {
    return { ...leaveTransaction(s0, "sink failed"), replies: [REPLIES.localError] };
  }
  const chunkedBytes = tx.chunkedBytes + octets;
  const s = { ...s0, tx: { ...tx, isChunking: true, chunkedBytes, chunksDeadlineAt: deadlineAt } };
  if (!isLast) {
    // An empty chunk moves nothing forward, like a NOOP: it spends the idle budget. Chunks with
    // octets are bounded by `maxMessageBytes`; `BDAT 0`, each answered 250 just before the
    // timeout, held a slot for ever.
    const chunk = { replies: [bdatChunkReply(octets)], next: { state: s, why: "BDAT" } };
    return octets === 0 ? { ...chunk, isIdle: true } : chunk;
  }
  // Not flushed while the client's next commands are here already (pipelined messages): the
  // loop sends the replies once it has read everything that arrived.
  return finishTransaction(ctx, s, chunkedBytes);
}
