/**
 * The customer side of ODMR (RFC 2645): one poll. Connects, secures and authenticates
 * (`_customer_dialog.ts`), says ATRN, and after `250` serves SMTP on the same connection with
 * the foundation's SmtpReceiver, handing each message to the local mail system cut-through
 * (the provider's 250 only once the local side has it). Recipients outside the ATRN domains
 * are refused (`550 5.7.1`). Returns the README.md exit code; never throws for peers.
 */
import type { FetchConfig } from "../config/types.ts";
import type { MessageSink, SessionInfo, SinkTransaction } from "../smtp/sink.ts";
import { SmtpReceiver } from "../smtp/receiver.ts";
import type { Reply } from "../wire/reply.ts";
import { REPLIES } from "../wire/replies.ts";
import { MaildirSink } from "../smtp/sinks/maildir.ts";
import { describeTarget, LocalSmtpSink } from "../smtp/sinks/local_smtp.ts";
import type { LocalTimeouts } from "../smtp/sinks/local_smtp.ts";
import { AllowedDomainsSink } from "../smtp/sinks/allowed_domains.ts";
import type { Logger } from "../observe/log.ts";
import { runCustomerDialog } from "./_customer_dialog.ts";
import type { FetchExitCode, FetchResult } from "./_customer_stops.ts";
import { CONNECT_TIMEOUT_MS, startPoll } from "./customer_start.ts";
import type { PollStart } from "./customer_start.ts";
import { type LedgerCounts, LedgerSink, noCounts } from "./_customer_ledger.ts";
import { errorText } from "../errors.ts";

export type { FetchExitCode, FetchResult } from "./_customer_stops.ts";

/** RFC 2645 §5.2.1: wait at least 10 minutes for the ATRN reply. */
export const ATRN_TIMEOUT_MS = 10 * 60_000 + 30_000;
/** After SIGTERM, how long the message in flight may take before the link is dropped. */
export const DEFAULT_STOP_GRACE_MS = 30_000;
/** Largest message the customer takes (SIZE in its EHLO); bodies are streamed, not held. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024 * 1024;
/** Recipients per transaction accepted from the provider. */
export const MAX_RECIPIENTS = 1000;

/** What one poll needs besides the config. */
export interface CustomerDeps {
  readonly log: Logger;
  /** Abort = SIGTERM/SIGINT: finish or abandon the message in flight, then end. */
  readonly signal?: AbortSignal;
  readonly maxMessageBytes?: number;
  readonly stopGraceMs?: number;
  /**
   * The poll's files and connection when they are there already (`fetch --once` opens the
   * connection before it loads its other modules, src/cli/main.ts); otherwise the poll starts.
   */
  readonly start?: PollStart;
  readonly timeouts?: {
    readonly connectMs?: number;
    readonly commandMs?: number;
    readonly atrnMs?: number;
    /** SMTP server role after reversal: per command / data read. */
    readonly receiverMs?: number;
    readonly local?: Partial<LocalTimeouts>;
  };
}

/** How one poll ended. */
export interface FetchOutcome extends Readonly<LedgerCounts> {
  readonly exitCode: FetchExitCode;
  readonly result: FetchResult;
  /** For people (stderr / log): what happened, naming the server. */
  readonly message: string;
  /** The provider was stopped by our signal (the caller exits 0). */
  readonly wasStopped: boolean;
}

const NO_COUNTS: Readonly<LedgerCounts> = noCounts();

/** Runs one poll against `config.server`. */
export async function runCustomer(
  config: FetchConfig & { readonly hostname: string },
  deps: CustomerDeps,
): Promise<FetchOutcome> {
  const log = deps.log;
  const where = `${config.server.host}:${config.server.port}`;
  const early = (exitCode: FetchExitCode, result: FetchResult, message: string) => ({
    ...NO_COUNTS,
    exitCode,
    result,
    message,
    wasStopped: deps.signal?.aborted ?? false,
  });

  const start = deps.start ??
    await startPoll(config, deps.timeouts?.connectMs ?? CONNECT_TIMEOUT_MS);
  if (!start.ok) return early(2, "config", start.message);
  const { password, caPem, clientCert } = start.files;

  const dialog = await runCustomerDialog({
    host: config.server.host,
    port: config.server.port,
    tls: config.tls,
    caPem,
    caOnly: config.caOnly === true,
    tlsServerName: config.tlsServerName,
    user: config.user,
    password,
    clientCert,
    domains: config.domains,
    hostname: config.hostname,
    connected: start.connected,
    connectTimeoutMs: deps.timeouts?.connectMs ?? CONNECT_TIMEOUT_MS,
    commandTimeoutMs: deps.timeouts?.commandMs ?? 5 * 60_000,
    atrnTimeoutMs: deps.timeouts?.atrnMs ?? ATRN_TIMEOUT_MS,
    log,
    ...(deps.signal ? { signal: deps.signal } : {}),
  });
  if (dialog.kind === "stop") {
    return early(dialog.exitCode, dialog.result, dialog.message);
  }

  // Reversed: we are the SMTP server now (RFC 2645 §5.3), on the same Conn and reader.
  const { conn, reader } = dialog;
  const target = config.deliverTo;
  const local = target.kind === "maildir"
    ? new MaildirSink({ path: target.path, hostname: config.hostname, log })
    : new LocalSmtpSink({
      target,
      hostname: config.hostname,
      log,
      ...(deps.timeouts?.local ? { timeouts: deps.timeouts.local } : {}),
    });
  const where2 = target.kind === "maildir" ? `maildir:${target.path}` : describeTarget(target);
  let policy: MessageSink = local;
  if (config.domains.length > 0) {
    policy = new AllowedDomainsSink(local, config.domains, log);
  } else {
    log.warn("recipients_unchecked", {
      reason: "fetch.domains is empty (bare ATRN): the provider decides which domains arrive",
    });
  }
  const ledger = new LedgerSink(policy, where2, log);
  const gate = new StopGate(ledger);

  let wasStopped = false;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const onAbort = () => {
    wasStopped = true;
    gate.close();
    log.info("stopping", { graceMs: deps.stopGraceMs ?? DEFAULT_STOP_GRACE_MS });
    // A message that does not finish in time is abandoned: without our 250 it stays queued
    // on the provider (at most a duplicate later, never a loss).
    graceTimer = setTimeout(() => conn.destroy(), deps.stopGraceMs ?? DEFAULT_STOP_GRACE_MS);
  };
  if (deps.signal?.aborted) onAbort();
  else deps.signal?.addEventListener("abort", onAbort, { once: true });

  const receiverMs = deps.timeouts?.receiverMs ?? 5 * 60_000;
  let reason: string;
  try {
    const receiver = new SmtpReceiver({
      conn,
      reader,
      sink: gate,
      log: log.with({ role: "reversed" }),
      options: {
        hostname: config.hostname,
        maxMessageBytes: deps.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES,
        maxRecipients: MAX_RECIPIENTS,
        commandTimeoutMs: receiverMs,
        dataTimeoutMs: receiverMs,
        maxErrors: 10,
        // No Received: here: the provider stamped one at the MX and the local MTA stamps its
        // own; the hand-off stays byte-exact (a Maildir gets Return-Path/Delivered-To).
        addTraceHeader: false,
        // LMTP answers per recipient after the body; PRDR carries those answers upstream, so
        // one local refusal (a full mailbox) never holds back the message's other recipients.
        offersPrdr: target.kind !== "maildir" && target.kind !== "smtp",
        // After our reply to BDAT LAST no transaction is open: the provider's pipelined messages
        // need no RSET between them (wire/ehlo.ts).
        saysLastEnds: true,
        // The provider never half-closes: once it hung up, what it sent before is not finished
        // (it deferred those messages and sends them again).
        stopAtInputEnd: true,
        // Its own refusals (size, content) are logged and counted with the local side's.
        events: ledger.receiverEvents(),
      },
    });
    reason = (await receiver.run()).reason;
  } catch (err) {
    reason = "error";
    log.error("reversed_session_failed", { error: errorText(err) });
  } finally {
    deps.signal?.removeEventListener("abort", onAbort);
    if (graceTimer !== undefined) clearTimeout(graceTimer);
    // Every reply is out: the local MTA's QUIT and the provider's close go out together.
    await Promise.all([
      local instanceof LocalSmtpSink ? local.close() : undefined,
      conn.close().catch(() => {}),
    ]);
  }

  const counts = { ...ledger.counts };
  log.info("fetch_done", { server: where, reason, ...counts });
  const summary = `${counts.messages} message(s), ${counts.delivered} recipient(s) delivered to ` +
    `${where2}, ${counts.deferred} deferred, ${counts.failed} failed, ${counts.foreign} foreign`;
  if (reason !== "quit" && !wasStopped) {
    return {
      ...counts,
      exitCode: 5,
      result: "temporary",
      message: `Session with "${where}" ended early (${reason}): ${summary}`,
      wasStopped,
    };
  }
  if (counts.deferred > 0) {
    return {
      ...counts,
      exitCode: 5,
      result: "temporary",
      message: `Local delivery deferred some mail: ${summary}`,
      wasStopped,
    };
  }
  return { ...counts, exitCode: 0, result: "delivered", message: summary, wasStopped };
}

/** After a stop request, new transactions get `421` (the provider then ends the session). */
class StopGate implements MessageSink {
  readonly #inner: MessageSink;
  #isClosed = false;

  constructor(inner: MessageSink) {
    this.#inner = inner;
  }

  close(): void {
    this.#isClosed = true;
  }

  begin(mail: Parameters<MessageSink["begin"]>[0], session: SessionInfo): Promise<
    SinkTransaction | Reply
  > {
    if (this.#isClosed) {
      return Promise.resolve(REPLIES.shuttingDown);
    }
    return this.#inner.begin(mail, session);
  }
}
