/**
 * The reversed phase of an ODMR session (RFC 2645 §5.3): the provider is now the SMTP client
 * on the customer's connection. Delivers every waiting message of the leased domains with the
 * shared SmtpSender and settles each recipient durably by the customer's reply. A recipient
 * leaves the queue only after the customer said 250 for it; anything unsettled stays queued.
 * A recipient settled as failed gets a failure DSN once that is recorded (src/queue/bounce.ts).
 */
import type { Conn } from "../net/conn.ts";
import type { LineReader } from "../wire/line_reader.ts";
import { formatReplyText } from "../wire/reply.ts";
import type { Lease, Settlement } from "../queue/types.ts";
import { DEFAULT_SENDER_TIMEOUTS, type MessageResult, SmtpSender } from "../smtp/sender.ts";
import type { SenderTimeouts } from "../smtp/sender.ts";
import { type LeasedMessage, leasedMessage } from "../smtp/leased_message.ts";
import type { Logger } from "../observe/log.ts";
import type { OdmrEvents } from "./events.ts";
import { bounceFailed, type BounceOptions } from "../queue/bounce.ts";
import { SettleBatcher } from "./_provider_settle.ts";
import { LeaseRenewal } from "../queue/lease_renewal.ts";
import { DEFAULT_DRAIN_TIMEOUT_MS, DrainDeadline } from "./_drain_deadline.ts";

/** What the drain needs. */
export interface DrainOptions {
  readonly conn: Conn;
  readonly reader: LineReader;
  readonly lease: Lease;
  readonly user: string;
  readonly log: Logger;
  readonly events: OdmrEvents;
  /** Failure DSNs for recipients settled as failed; absent: none are sent. */
  readonly bounce?: BounceOptions;
  /**
   * Whether `user` still owns `domain`, asked before each message: a domain taken from the user
   * (or moved to another) while the drain runs takes no further message, its mail stays queued
   * for its owner of the moment. Absent: not asked.
   */
  readonly owns?: (domain: string) => boolean;
  readonly options: {
    readonly hostname: string;
    readonly lineRecords: boolean;
    readonly leaseSeconds: number;
    /** Caps every wait on the customer (a stuck customer must not hold the lease). */
    readonly commandTimeoutMs?: number;
    /** `odmr.drain_timeout`: a message finished at least this often (_drain_deadline.ts). */
    readonly drainTimeoutMs?: number;
  };
}

/** Counts of one drain. */
export interface DrainSummary {
  readonly messages: number;
  readonly delivered: number;
  readonly deferred: number;
  readonly failed: number;
  readonly connectionLost: boolean;
}

/**
 * Messages in flight to a customer that offers CHUNKING and PIPELINING (src/smtp/_sender_window.ts).
 * A customer answers a pipelined group once it has read all we sent (RFC 2920 §3.2), or earlier
 * when it holds many replies (src/smtp/receiver.ts: 100, i.e. 25 of our messages). With fewer
 * in flight than that it answers only when it has run out of work, and the two ends take turns
 * (8: ~1 core busy of 2). With 64 it answers while three quarters of a window still wait
 * behind, and the next groups arrive before it runs dry. A lost link costs no more: each
 * message in flight is deferred and sent again (at most a duplicate, never a loss).
 */
export const DRAIN_WINDOW = 64;

/**
 * No further message goes out while this many body octets are in flight: large messages do not
 * go 64 at a time (messages of ~1 MB still overlap, 4 at a time; the customer's socket pauses
 * what it has not read anyway), and a lost link sends again this much (plus one message) at most.
 */
export const DRAIN_WINDOW_BYTES = 4 * 1024 * 1024;

/** During a long drain, a progress line at most this often. */
const PROGRESS_EVERY_MS = 10_000;

/** Delivers the lease's messages over `conn`; never throws for customer behaviour. */
export async function drainLease(opts: DrainOptions): Promise<DrainSummary> {
  const { conn, lease, log } = opts;
  const sender = new SmtpSender({
    conn,
    reader: opts.reader,
    log,
    options: {
      hostname: opts.options.hostname,
      // One line per TLS record only matters under TLS (fetchmail reads one line per record).
      lineRecords: opts.options.lineRecords && conn.isSecure,
      // A customer offering CHUNKING and PIPELINING gets several messages in flight.
      window: DRAIN_WINDOW,
      windowBytes: DRAIN_WINDOW_BYTES,
      ...(opts.options.commandTimeoutMs === undefined
        ? {}
        : { timeouts: drainTimeouts(opts.options.commandTimeoutMs) }),
    },
  });
  // Renewed on a timer while the drain runs (src/queue/lease_renewal.ts): a lost lease, or an
  // overdue renewal that fails, stops the drain at its next message (`leased`).
  const renewals = new LeaseRenewal({
    lease,
    leaseSeconds: opts.options.leaseSeconds,
    log,
    fields: { user: opts.user },
  });
  // Past it the connection is dropped (a client has no reply to give, RFC 5321 §4.5.3.2): the
  // waits on the customer end at once, the messages in flight stay queued.
  const deadline = new DrainDeadline(
    opts.options.drainTimeoutMs ?? DEFAULT_DRAIN_TIMEOUT_MS,
    () => {
      log.warn("drain_stopped", {
        user: opts.user,
        reason: "timeout",
        messages: deadline.finishedCount,
      });
      conn.destroy();
    },
  );
  try {
    return await drainLeased(opts, sender, renewals, deadline);
  } finally {
    deadline.stop();
    // A renewal still on its way must not reach the queue after the caller released the lease.
    await renewals.stop();
  }
}

/**
 * Greets the customer and delivers the lease's messages; the lease is renewed meanwhile, and the
 * deadline moved on by each message finished.
 */
async function drainLeased(
  opts: DrainOptions,
  sender: SmtpSender,
  renewals: LeaseRenewal,
  deadline: DrainDeadline,
): Promise<DrainSummary> {
  const summary = { messages: 0, delivered: 0, deferred: 0, failed: 0, connectionLost: false };
  const { lease, log } = opts;
  const greeting = await sender.greet();
  if (greeting.code !== 220) {
    log.warn("drain_no_greeting", { reply: formatReplyText(greeting).trim() });
    return { ...summary, connectionLost: true };
  }
  const hello = await sender.hello();
  if ("code" in hello) {
    log.warn("drain_hello_refused", { reply: formatReplyText(hello).trim() });
    await sender.quit();
    return { ...summary, connectionLost: true };
  }
  /**
   * Set when a settlement could not be recorded (a full disk): each message the customer takes
   * after that stays queued and goes again at the next ATRN, so no further one is offered.
   */
  let isSettleFailing = false;
  /** The lease's messages; stops once the lease was lost or a settlement failed. */
  async function* leased(): AsyncGenerator<LeasedMessage> {
    for await (const message of lease.messages()) {
      if (isSettleFailing) return;
      if (renewals.isLost || (renewals.isDue && !(await renewals.renew()))) return;
      const gone = opts.owns === undefined
        ? undefined
        : message.recipients.find((r) => !opts.owns?.(r.domain));
      if (gone !== undefined) {
        log.warn("drain_stopped", { user: opts.user, reason: "not_owner", domain: gone.domain });
        return;
      }
      deadline.sent(message.size);
      yield leasedMessage(message, lease);
    }
  }
  const settling = new SettleBatcher(lease);
  let progressAt = Date.now() + PROGRESS_EVERY_MS;
  // sendMany pipelines the next envelope behind each body; results still come one message at
  // a time, in order, each after its own final reply.
  const onResult = (outbound: LeasedMessage, result: MessageResult) => {
    const message = outbound.queued;
    const now = Date.now();
    summary.messages++;
    deadline.finished(message.size);
    const settlements: Settlement[] = [];
    let failed: { id: number; reply: string }[] | undefined;
    const delaySeconds = Math.max(0, Math.round((now - message.receivedAt) / 1000));
    for (const r of result.recipients) {
      const queued = message.recipients.find((q) => q.id === r.id);
      const reply = formatReplyText(r.reply).trim();
      if (r.outcome === "delivered") {
        summary.delivered++;
        opts.events.delivered(queued?.domain ?? "");
      } else if (r.outcome === "deferred") summary.deferred++;
      else {
        summary.failed++;
        (failed ??= []).push({ id: r.id, reply });
      }
      settlements.push({ recipientId: r.id, messageId: message.id, outcome: r.outcome, reply });
      // One line per recipient attempt, the way operators grep Postfix's status=; a refusal
      // by the customer is its fact, not our error.
      log[r.outcome === "failed" ? "warn" : "info"](r.outcome, {
        id: message.id,
        to: queued?.address,
        reply,
        delay: delaySeconds,
      });
    }
    if (now >= progressAt) {
      progressAt = now + PROGRESS_EVERY_MS;
      log.info("drain_progress", { user: opts.user, messages: summary.messages });
    }
    const bounce = opts.bounce;
    // Settle without waiting, with the other results of this turn (one settle call).
    settling.add({
      settlements,
      // The report only once the failure is on disk (a crash before: sent again, not bounced).
      ...(bounce === undefined || failed === undefined ? {} : {
        recorded: async () => {
          await bounceFailed(message, failed, { ...bounce, log });
        },
      }),
      // Not recorded: those recipients stay queued and are sent again (a duplicate, not a loss);
      // the drain ends after the messages in flight, so that only they go twice.
      failed: (err) => {
        log.error("settle_failed", { id: message.id, error: String(err) });
        if (!isSettleFailing) {
          log.warn("drain_stopped", { user: opts.user, reason: "settle_failed" });
        }
        isSettleFailing = true;
      },
    });
  };
  let sent: { readonly connectionLost: boolean };
  try {
    sent = await sender.sendMany(leased(), onResult);
  } catch (err) {
    // The results reported before the failure (a queue read that threw) are
    // recorded before this rejects: the caller releases the lease next, and a settlement
    // after the release would leave its messages' bodies behind until the next start.
    await settling.settled().catch((e) =>
      log.error("settle_failed", { user: opts.user, error: String(e) })
    );
    throw err;
  }
  summary.connectionLost = sent.connectionLost;
  await settling.settled();
  if (!summary.connectionLost) await sender.quit();
  opts.events.drainFinished(opts.user, summary.delivered);
  log.info("drain_done", { user: opts.user, ...summary });
  return summary;
}

/**
 * A customer that stops reading (or answering) mid-drain: each wait is capped by the
 * configured command timeout instead of the RFC 5321 client minimums (up to 10 minutes), so
 * the session ends and the lease is released. The final reply gets twice as long: the
 * customer answers it only after its local MTA did (cut-through).
 */
function drainTimeouts(commandTimeoutMs: number): Partial<SenderTimeouts> {
  const cap = (ms: number) => Math.min(ms, commandTimeoutMs);
  const d = DEFAULT_SENDER_TIMEOUTS;
  return {
    greetingMs: cap(d.greetingMs),
    ehloMs: cap(d.ehloMs),
    mailMs: cap(d.mailMs),
    rcptMs: cap(d.rcptMs),
    dataInitMs: cap(d.dataInitMs),
    dataBlockMs: cap(d.dataBlockMs),
    dataFinalMs: Math.min(d.dataFinalMs, 2 * commandTimeoutMs),
    quitMs: cap(d.quitMs),
  };
}
