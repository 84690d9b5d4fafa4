/**
 * The mail-transaction commands of the SMTP server role (MAIL, RCPT, DATA, BDAT): check with
 * the pure guards, then apply through the sink. A sink that throws is a bug path: it is
 * logged, the transaction is aborted and the peer gets `451 4.3.0`.
 */
import type { Conn } from "../net/conn.ts";
import type { LineReader } from "../wire/line_reader.ts";
import type { Logger } from "../observe/log.ts";
import type { MessageSink, SessionInfo, SinkTransaction } from "./sink.ts";
import type { Reply } from "../wire/reply.ts";
import { isPositive, isTransient, reply } from "../wire/reply.ts";
import { bdatChunkReply, REPLIES } from "../wire/replies.ts";
import { formatReceived } from "./trace.ts";
import { BodyLineCheck } from "../wire/body_check.ts";
import type { DataFault } from "../wire/data_decoder.ts";
import { checkBdat, checkBdatState, checkData, checkMail, checkRcpt } from "./_receiver_checks.ts";
import type { CheckContext, SessionState, Transaction } from "./_receiver_checks.ts";
import type { ReceiverOptions, Step } from "./_receiver_types.ts";

/** What the transaction handlers need from the receiver. */
export interface ReceiverCore {
  readonly conn: Conn;
  readonly reader: LineReader;
  readonly sink: MessageSink;
  readonly log: Logger;
  readonly options: ReceiverOptions;
  readonly state: SessionState;
  readonly checkContext: CheckContext;
  readonly sessionInfo: SessionInfo;
  /** The user AUTH proved, if any. */
  readonly authenticatedUser: string | undefined;
  protocolError(r: Reply): Step;
  queueReply(r: Reply): void;
  flush(): Promise<void>;
  transition(next: SessionState, why: string): void;
  messageAccepted(): void;
  dropTransaction(why: string): Promise<void>;
}

const DEFAULT_MAX_DATA_LINE_BYTES = 1000;

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
const DEADLINE = { kind: "deadline" } as const;

function isTransaction(v: SinkTransaction | Reply): v is SinkTransaction {
  return "addRecipient" in v;
}

/** MAIL FROM: a new transaction in the sink. */
export async function handleMail(rx: ReceiverCore, args: string): Promise<Step> {
  const s = rx.state;
  if (s.kind !== "ready") return rx.protocolError(REPLIES.badSequence);
  // Submission: nothing is accepted from a client that has not authenticated (RFC 4954 §6).
  if (rx.options.auth !== undefined && rx.authenticatedUser === undefined) {
    return rx.protocolError(REPLIES.authRequired);
  }
  const checked = checkMail(s.helo, args, rx.checkContext);
  if (!checked.ok) {
    if (checked.reply === REPLIES.tooManyMessages) {
      rx.queueReply(checked.reply);
      return { end: "tooManyMessages" };
    }
    if (checked.reply === REPLIES.sizeExceeded) rx.options.events?.messageRefused("size");
    return rx.protocolError(checked.reply);
  }
  let began: SinkTransaction | Reply;
  try {
    began = await rx.sink.begin(checked.value, rx.sessionInfo);
  } catch (err) {
    rx.log.error("sink_failed", { call: "begin", error: String(err) });
    rx.queueReply(REPLIES.localError);
    return undefined;
  }
  if (!isTransaction(began)) {
    rx.queueReply(began);
    return undefined;
  }
  const tx: Transaction = {
    sink: began,
    mail: checked.value,
    recipients: [],
    isChunking: false,
    chunkedBytes: 0,
    bodyLines: new BodyLineCheck(rx.options.maxDataLineBytes ?? DEFAULT_MAX_DATA_LINE_BYTES),
  };
  rx.transition({ kind: "inTransaction", helo: s.helo, tx }, "MAIL");
  rx.queueReply(REPLIES.senderOk);
  return undefined;
}

/** RCPT TO: the guards, then the sink decides. */
export async function handleRcpt(rx: ReceiverCore, args: string): Promise<Step> {
  const s = rx.state;
  if (s.kind !== "inTransaction") return rx.protocolError(REPLIES.mailFirst);
  const checked = checkRcpt(s.tx, args, rx.checkContext);
  if (!checked.ok) {
    if (checked.reply === REPLIES.tooManyRecipients) {
      rx.options.events?.rcptRejected("too_many_recipients");
    }
    return rx.protocolError(checked.reply);
  }
  let r: Reply;
  try {
    r = await s.tx.sink.addRecipient(checked.value);
  } catch (err) {
    rx.log.error("sink_failed", { call: "addRecipient", id: s.tx.sink.id, error: String(err) });
    await rx.dropTransaction("sink failed");
    rx.queueReply(REPLIES.localError);
    return undefined;
  }
  if (isPositive(r)) s.tx.recipients.push(checked.value);
  rx.queueReply(r);
  return undefined;
}

function traceHeader(rx: ReceiverCore, tx: Transaction): Uint8Array {
  const info = rx.sessionInfo;
  const only = tx.recipients.length === 1 ? tx.recipients[0] : undefined;
  return formatReceived({
    heloName: info.heloName,
    remoteAddress: info.remoteAddress,
    hostname: rx.options.hostname,
    protocol: info.protocol,
    id: tx.sink.id,
    ...(only !== undefined ? { recipient: only.address } : {}),
    date: (rx.options.now ?? (() => new Date()))(),
  });
}

/**
 * A consumer that writes to the sink until the first failure, then drops the rest; `stop()`
 * drops everything later and waits for the write in flight (before the sink is aborted).
 */
function sinkWriter(rx: ReceiverCore, tx: Transaction) {
  const state: { error: unknown; failed: boolean } = { error: undefined, failed: false };
  let isStopped = false;
  let inFlight: Promise<void> = Promise.resolve();
  const writeOne = async (chunk: Uint8Array): Promise<void> => {
    try {
      await tx.sink.write(chunk);
    } catch (err) {
      state.failed = true;
      state.error = err;
      rx.log.error("sink_failed", { call: "write", id: tx.sink.id, error: String(err) });
    }
  };
  const write = (chunk: Uint8Array): Promise<void> => {
    if (state.failed || isStopped) return Promise.resolve();
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
 * Races a body read against the total deadline. On expiry the read is left to settle when the
 * caller closes the Conn, and the sink gets no more bytes.
 */
async function withDataDeadline<T>(
  rx: ReceiverCore,
  out: ReturnType<typeof sinkWriter>,
  reading: Promise<T>,
): Promise<T | typeof DEADLINE> {
  const ms = rx.options.dataDeadlineMs ?? dataDeadlineMs(rx.options.maxMessageBytes);
  let timer: ReturnType<typeof setTimeout> | undefined;
  const expired = new Promise<typeof DEADLINE>((resolve) => {
    timer = setTimeout(() => resolve(DEADLINE), ms);
  });
  try {
    const r = await Promise.race([reading, expired]);
    if (r === DEADLINE) {
      reading.catch(() => {});
      await out.stop();
      rx.log.warn("smtp_data_deadline", { deadlineMs: ms });
    }
    return r;
  } finally {
    clearTimeout(timer);
  }
}

/** The end of a body: the sink's reply (or PRDR replies), or 451 when it throws. */
async function finishTransaction(rx: ReceiverCore, tx: Transaction, size: number): Promise<void> {
  let r: Reply;
  try {
    const each = tx.mail.prdr === true && tx.sink.finishEach !== undefined
      ? await tx.sink.finishEach()
      : undefined;
    if (each !== undefined) {
      // draft-hall-prdr-00: 353, then one reply per accepted recipient, then the final reply.
      rx.queueReply(REPLIES.prdrBegins);
      for (const one of each) rx.queueReply(one);
      r = prdrFinal(each);
    } else {
      r = await tx.sink.finish();
    }
  } catch (err) {
    rx.log.error("sink_failed", { call: "finish", id: tx.sink.id, error: String(err) });
    r = REPLIES.localError;
  }
  if (isPositive(r)) {
    const s = rx.state;
    if (s.kind === "inTransaction") rx.transition({ kind: "ready", helo: s.helo }, "end of data");
    rx.messageAccepted();
    rx.log.info("smtp_message_received", {
      id: tx.sink.id,
      size,
      recipients: tx.recipients.length,
    });
  } else {
    await rx.dropTransaction("message refused");
  }
  rx.queueReply(r);
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
 * checks). After a bare CR or LF in DATA the session ends, since the peer and we may disagree
 * on where the data ended (SMTP smuggling, docs/protocol.md §6.5); BDAT framing is a byte count,
 * so its session goes on.
 */
function refuseBody(rx: ReceiverCore, fault: DataFault, id: string, how: "DATA" | "BDAT"): Step {
  switch (fault) {
    case "bareNewline":
      rx.options.events?.messageRefused("content");
      rx.log.warn("smtp_bare_newline", { where: how === "DATA" ? "data" : "bdat", id });
      rx.queueReply(REPLIES.bareNewlineData);
      return how === "DATA" ? { end: "bareNewline" } : undefined;
    case "lineTooLong":
      rx.options.events?.messageRefused("content");
      rx.queueReply(REPLIES.dataLineTooLong);
      return undefined;
    case "tooBig":
      rx.options.events?.messageRefused("size");
      rx.queueReply(REPLIES.sizeExceeded);
      return undefined;
    default: {
      const never: never = fault;
      throw new Error(`unhandled body fault ${never}`);
    }
  }
}

/** DATA: 354, the body to its real end, then one reply (RFC 5321 §4.1.1.4). */
export async function handleData(rx: ReceiverCore, args: string): Promise<Step> {
  const s = rx.state;
  if (s.kind !== "inTransaction") return rx.protocolError(REPLIES.mailFirst);
  const tx = s.tx;
  const checked = checkData(tx, args);
  if (!checked.ok) return rx.protocolError(checked.reply);
  rx.queueReply(REPLIES.startData);
  await rx.flush();
  const out = sinkWriter(rx, tx);
  if (rx.options.addTraceHeader) await out.write(traceHeader(rx, tx));
  const result = await withDataDeadline(
    rx,
    out,
    rx.reader.readData(
      {
        maxMessageBytes: rx.options.maxMessageBytes,
        maxLineBytes: rx.options.maxDataLineBytes ?? DEFAULT_MAX_DATA_LINE_BYTES,
      },
      out.write,
      rx.options.dataTimeoutMs ?? rx.options.commandTimeoutMs,
    ),
  );
  switch (result.kind) {
    case "deadline":
      await rx.dropTransaction("DATA deadline");
      rx.queueReply(DATA_DEADLINE_REPLY);
      return { end: "timeout" };
    case "eof":
      await rx.dropTransaction("end of stream in DATA");
      return { end: "eof" };
    case "rejected":
      await rx.dropTransaction(`DATA ${result.fault}`);
      return refuseBody(rx, result.fault, tx.sink.id, "DATA");
    case "ok":
      if (out.state.failed) {
        await rx.dropTransaction("sink failed");
        rx.queueReply(REPLIES.localError);
        return undefined;
      }
      await finishTransaction(rx, tx, result.size);
      return undefined;
    default: {
      const never: never = result;
      throw new Error(`unhandled data result ${JSON.stringify(never)}`);
    }
  }
}

/** Reads and drops a chunk announced by a refused BDAT, to stay in sync (RFC 3030 §3). */
async function skipChunk(rx: ReceiverCore, octets: number): Promise<boolean> {
  return await rx.reader.readExact(
    octets,
    () => {},
    rx.options.dataTimeoutMs ?? rx.options.commandTimeoutMs,
  );
}

/** BDAT: exactly `octets` bytes, no unstuffing; LAST ends the transaction (RFC 3030). */
export async function handleBdat(rx: ReceiverCore, args: string): Promise<Step> {
  const cmd = checkBdat(args);
  if (!cmd.ok) {
    if (cmd.octets !== undefined && !(await skipChunk(rx, cmd.octets))) return { end: "eof" };
    await rx.dropTransaction("BDAT syntax");
    return rx.protocolError(cmd.reply);
  }
  const { octets, isLast } = cmd.value;
  const st = checkBdatState(rx.state);
  if (!st.ok) {
    if (!(await skipChunk(rx, octets))) return { end: "eof" };
    return rx.protocolError(st.reply);
  }
  const tx = st.value;
  const out = sinkWriter(rx, tx);
  if (!tx.isChunking) {
    tx.isChunking = true;
    if (rx.options.addTraceHeader) await out.write(traceHeader(rx, tx));
  }
  const max = rx.options.maxMessageBytes;
  const complete = await withDataDeadline(
    rx,
    out,
    rx.reader.readExact(
      octets,
      async (chunk) => {
        // The same line check as DATA, over every byte (also past the size limit).
        tx.bodyLines.push(chunk);
        const before = tx.chunkedBytes;
        tx.chunkedBytes += chunk.length;
        if (tx.bodyLines.fault !== undefined) return;
        if (tx.chunkedBytes > max) {
          if (before < max) await out.write(chunk.subarray(0, max - before));
          return;
        }
        await out.write(chunk);
      },
      rx.options.dataTimeoutMs ?? rx.options.commandTimeoutMs,
    ),
  );
  if (complete === DEADLINE) {
    await rx.dropTransaction("BDAT deadline");
    rx.queueReply(DATA_DEADLINE_REPLY);
    return { end: "timeout" };
  }
  if (!complete) {
    await rx.dropTransaction("end of stream in BDAT");
    return { end: "eof" };
  }
  if (isLast) tx.bodyLines.end();
  // A failed BDAT ends the transaction: later chunks get 503 until a new MAIL (RFC 3030 §3).
  const fault = tx.bodyLines.fault ?? (tx.chunkedBytes > max ? "tooBig" : undefined);
  if (fault !== undefined) {
    await rx.dropTransaction(`BDAT ${fault}`);
    return refuseBody(rx, fault, tx.sink.id, "BDAT");
  }
  if (out.state.failed) {
    await rx.dropTransaction("sink failed");
    rx.queueReply(REPLIES.localError);
    return undefined;
  }
  if (!isLast) {
    rx.queueReply(bdatChunkReply(octets));
    return undefined;
  }
  await finishTransaction(rx, tx, tx.chunkedBytes);
  await rx.flush();
  return undefined;
}
