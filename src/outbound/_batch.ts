/**
 * One outbound lease worked through: the leased destination's due messages, DKIM-signed when
 * the sender's domain has a key, sent over one connection (`deliverBatch`; a message with more
 * than 100 recipients there as transactions of 100: MAX_TRANSACTION_RECIPIENTS), each recipient
 * settled durably by the reply that decided it: delivered, failed (then the failure report),
 * or deferred until the next step of the retry schedule. The lease is renewed on a timer while
 * the batch runs, as the ATRN drain's (src/odmr/drain.ts): a lost lease stops the batch, and so
 * does a renewal overdue before the next message that fails (the queue is not answering). The
 * lease is released at the end, after any renewal still on its way (kept until it runs out when
 * a settlement failed: else the destination was claimed again at once and its message resent);
 * whatever was not settled stays queued.
 */
import type { Lease, QueuedMessage, Settlement } from "../queue/types.ts";
import { LeaseRenewal } from "../queue/lease_renewal.ts";
import type { Logger } from "../observe/log.ts";
import type { DkimKey } from "../dkim/signer.ts";
import { type LeasedMessage, leasedMessage } from "../smtp/leased_message.ts";
import { formatReplyText } from "../wire/reply.ts";
import { deliverBatch, type DeliveryOptions, isTlsLostAfterEnd, type TlsPlan } from "./deliver.ts";
import { retryAt } from "./backoff.ts";
import { signOutbound } from "./sign.ts";

/**
 * Recipients per transaction: RFC 5321 §4.5.3.1.10 lets a server refuse (452) past 100 RCPTs,
 * and a client "SHOULD be prepared to transmit in 100-recipient chunks". A message with more at
 * one domain goes as several transactions on the same connection (Postfix splits at
 * `smtp_destination_recipient_limit`, 50); else each retry delivered 100 more.
 */
export const MAX_TRANSACTION_RECIPIENTS = 100;

/** A recipient settled as failed, with the reply that failed it (`550 5.1.1 …`). */
export interface FailedRecipient {
  readonly id: number;
  readonly reply: string;
}

/** Outcome counters (metrics: `odmr_relay_outbound_deliveries_total{outcome}`). */
export interface OutboundEvents {
  delivery(outcome: "delivered" | "deferred" | "failed"): void;
}

/** What a batch needs; `delivery` without the per-batch fields. */
export interface BatchOptions {
  readonly log: Logger;
  readonly delivery: Omit<DeliveryOptions, "log" | "stop" | "cut">;
  readonly leaseSeconds: number;
  /** The retry steps (`outbound.retry`); default: backoff.ts's schedule. */
  readonly retryScheduleMs?: readonly number[];
  /**
   * Called once per batch: returns the DKIM keys that may sign `message` for its From `domain`
   * (none: sent unsigned). What it reads it may keep for the batch, so the keys are read and
   * parsed once per batch and domain, not once per message; a key added meanwhile signs from
   * the next batch on. Absent: nothing is signed.
   */
  readonly keysForBatch?: () => KeysFor;
  /** Queues the failure report for `failed` of `message`, once their settlement is durable. */
  readonly onFailed?: (message: QueuedMessage, failed: readonly FailedRecipient[]) => Promise<void>;
  readonly events?: OutboundEvents;
  /**
   * A destination that has become a user's: its mail is held for the owner's ATRN instead of
   * sent to its MX (which names us now: a loop, 5.4.6). Asked before the batch and before each
   * message; `hold` moves the destination's queued mail (QueueStore.holdForAtrn).
   */
  readonly owned?: {
    readonly isOwned: (domain: string) => boolean;
    readonly hold: (domain: string) => Promise<number>;
  };
  readonly now?: () => number;
  readonly random?: () => number;
}

/** The keys that may sign `message` for its From `domain`. */
export type KeysFor = (domain: string, message: QueuedMessage) => Promise<readonly DkimKey[]>;

/** What one batch did. */
export interface BatchCounts {
  readonly messages: number;
  readonly delivered: number;
  readonly deferred: number;
  readonly failed: number;
  readonly sessions: number;
}

/** Works through `lease` (one destination domain); never throws, always releases. */
export async function runBatch(
  lease: Lease,
  opts: BatchOptions,
  signals: { readonly stop: AbortSignal; readonly cut: AbortSignal },
): Promise<BatchCounts> {
  const now = opts.now ?? Date.now;
  const domain = lease.domains[0] ?? "";
  const log = opts.log.with({ domain });
  const counts = { messages: 0, delivered: 0, deferred: 0, failed: 0, sessions: 0 };
  // Renewed on a timer while the batch runs (src/queue/lease_renewal.ts); a lost lease aborts the
  // delivery like serve stopping, and an overdue renewal that fails stops it at the next message.
  const lost = new AbortController();
  const renewals = new LeaseRenewal({
    lease,
    leaseSeconds: opts.leaseSeconds,
    log,
    fields: { route: "mx" },
    onLost: () => lost.abort(),
    now,
  });
  const keysFor = opts.keysForBatch?.();
  /** Set once the destination was found owned: the rest of the batch is held for ATRN. */
  let isOwned = opts.owned?.isOwned(domain) ?? false;
  /**
   * Set when a settlement could not be recorded (a full disk): each message sent after that stays
   * due and goes to the MX again, so no further one is taken.
   */
  let isSettleFailing = false;
  /**
   * The lease's messages, signed; none once the lease is lost, an overdue renewal failed or a
   * settlement failed.
   */
  async function* leased(): AsyncGenerator<LeasedMessage> {
    if (isOwned) return;
    for await (const message of lease.messages()) {
      if (opts.owned?.isOwned(domain) === true) {
        isOwned = true;
        return;
      }
      let signed: LeasedMessage | undefined;
      const parts = Math.max(1, Math.ceil(message.recipients.length / MAX_TRANSACTION_RECIPIENTS));
      for (let part = 0; part < parts; part++) {
        if (renewals.isLost || isSettleFailing) return;
        if (renewals.isDue && !(await renewals.renew())) {
          // The lease may run out before the queue answers again; what is sent after that may
          // be sent again by whoever takes the destination next, and could not be settled anyway.
          log.warn("outbound_batch_stopped", { reason: "lease_not_renewed" });
          return;
        }
        // Signed once per message, whatever its number of parts.
        signed ??= await prepare(message, lease, keysFor);
        yield partOf(signed, part * MAX_TRANSACTION_RECIPIENTS);
      }
    }
  }
  const settling: Promise<void>[] = [];
  try {
    // Owned already: no MX lookup, no connection.
    const summary = isOwned ? { sessions: 0 } : await deliverBatch(
      domain,
      leased(),
      // A lost lease stops the batch like serve stopping: the message in flight finishes.
      {
        ...opts.delivery,
        log,
        tlsPlan,
        stop: AbortSignal.any([signals.stop, lost.signal]),
        cut: signals.cut,
      },
      (outbound, result) => {
        const message = outbound.queued;
        counts.messages++;
        const settlements: Settlement[] = [];
        const failed: FailedRecipient[] = [];
        const at = now();
        const delaySeconds = Math.max(0, Math.round((at - message.receivedAt) / 1000));
        for (const r of result.recipients) {
          const queued = message.recipients.find((q) => q.id === r.id);
          const reply = formatReplyText(r.reply).trim();
          counts[r.outcome]++;
          opts.events?.delivery(r.outcome);
          if (r.outcome === "deferred") {
            const failures = (queued?.attempts ?? 0) + 1;
            settlements.push({
              recipientId: r.id,
              messageId: message.id,
              outcome: "deferred",
              reply,
              retryAt: retryAt(at, failures, {
                ...(opts.retryScheduleMs !== undefined ? { scheduleMs: opts.retryScheduleMs } : {}),
                ...(opts.random !== undefined ? { random: opts.random } : {}),
              }),
            });
          } else {
            settlements.push({
              recipientId: r.id,
              messageId: message.id,
              outcome: r.outcome,
              reply,
            });
            if (r.outcome === "failed") failed.push({ id: r.id, reply });
          }
          // One line per recipient attempt, as the drain writes them (Postfix's status=).
          log[r.outcome === "failed" ? "warn" : "info"](r.outcome, {
            id: message.id,
            to: queued?.address,
            reply,
            delay: delaySeconds,
            host: result.host,
          });
        }
        const onFailed = opts.onFailed;
        // Not awaited here: concurrent settles share one commit (batched settlement).
        settling.push(
          lease.settle(settlements).then(
            // The report only once the failure is on disk (a crash before: sent again, not bounced).
            async () => {
              if (onFailed !== undefined && failed.length > 0) await onFailed(message, failed);
            },
            (err) => {
              // Not recorded: those recipients stay queued and are tried again (a duplicate at
              // worst, never a loss); the batch takes no further message.
              log.error("settle_failed", { id: message.id, error: String(err) });
              if (!isSettleFailing) log.warn("outbound_batch_stopped", { reason: "settle_failed" });
              isSettleFailing = true;
            },
          ),
        );
      },
    );
    counts.sessions = summary.sessions;
  } catch (err) {
    // The queue failed under us (reading messages or bodies): what was not settled stays queued.
    log.error("outbound_batch_failed", { error: String(err) });
  } finally {
    // A renewal still on its way must not reach the queue after the release.
    await renewals.stop();
    await Promise.allSettled(settling);
    if (isOwned) await holdOwned(domain, opts, log);
    if (isSettleFailing) {
      // Kept until it runs out (queue.lease_time): what was sent and not settled is still due,
      // and a release would let the worker, woken by this batch's end, claim the destination
      // at once and send it again, as fast as the MX answers, while settlements fail.
      log.warn("outbound_lease_kept", { reason: "settle_failed" });
    } else {
      // Owner-scoped: releasing a lease lost to another node changes nothing of theirs.
      await lease.release().catch((err) => {
        log.error("lease_release_failed", { route: "mx", error: String(err) });
      });
    }
  }
  log.info("outbound_batch_done", { ...counts });
  return counts;
}

/** The owned destination's queued mail held for ATRN; a failure is left to the next batch. */
async function holdOwned(domain: string, opts: BatchOptions, log: Logger): Promise<void> {
  try {
    const held = await opts.owned?.hold(domain);
    log.info("outbound_held", { recipients: held ?? 0 });
  } catch (err) {
    log.error("outbound_hold_failed", { error: String(err) });
  }
}

/**
 * What failed opportunistic TLS may do for a session opened for `message` (`TlsPlan`): at its
 * first attempt nothing in plaintext, as Postfix's fallback waits for mail queued
 * `minimal_backoff_time` (here: one retry step, 1 min by default); once tried, plaintext after a
 * failure; and after a TLS session lost right after its end of data, plaintext from the start.
 */
function tlsPlan(message: LeasedMessage): TlsPlan {
  const recipients = message.queued.recipients;
  if (recipients.some((r) => isTlsLostAfterEnd(r.lastReply))) return "plaintext";
  return recipients.some((r) => r.attempts > 0) ? "fallback" : "tls";
}

/**
 * The transaction of `signed` (a whole message) from its recipient `at` on: at most
 * MAX_TRANSACTION_RECIPIENTS recipients, its queued row with only those (settled, and
 * failure-reported, part by part). The whole message when it has no more.
 */
function partOf(signed: LeasedMessage, at: number): LeasedMessage {
  const queued = signed.queued;
  if (queued.recipients.length <= MAX_TRANSACTION_RECIPIENTS) return signed;
  const end = at + MAX_TRANSACTION_RECIPIENTS;
  return {
    ...signed,
    queued: { ...queued, recipients: queued.recipients.slice(at, end) },
    // leasedMessage maps the queued recipients one to one, in order.
    recipients: signed.recipients.slice(at, end),
  };
}

/** The queued message as the sender takes it, signed when its From domain has a key. */
async function prepare(
  message: QueuedMessage,
  lease: Lease,
  keysFor: KeysFor | undefined,
): Promise<LeasedMessage> {
  const outbound = leasedMessage(message, lease);
  if (keysFor === undefined) return outbound;
  return (await signOutbound(outbound, (domain) => keysFor(domain, message))).message;
}
