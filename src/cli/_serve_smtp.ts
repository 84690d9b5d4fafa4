/**
 * One inbound SMTP connection of `serve`: admission (connection limits, `421 4.7.0`), then an
 * SmtpReceiver whose sink is the queue, accepting only domains some user owns. Catches
 * everything at its top (docs/architecture.md "Conventions"): one bad peer never takes down the listener.
 */
import type { Conn } from "../net/conn.ts";
import { LineReader } from "../wire/line_reader.ts";
import { formatReply, reply } from "../wire/reply.ts";
import { SmtpReceiver } from "../smtp/receiver.ts";
import { QueueSink } from "../smtp/sinks/queue_sink.ts";
import { MAX_IDLE_COMMANDS, MAX_SESSION_ERRORS, maxAttemptsFor } from "../smtp/session_budget.ts";
import type { ConnectionLimiter } from "./_serve_limits.ts";
import { admitConnection } from "./_serve_admission.ts";
import type { ServeDeps } from "./_serve_deps.ts";
import { TracedSink } from "./_serve_smtp_trace.ts";
import type { SessionActivity } from "./_serve_sessions.ts";
import { quotaOf } from "../config/policy.ts";
import type { AuthThrottle } from "../auth/throttle.ts";
import { SubmissionAuth } from "../submission/auth.ts";
import type { SubmissionRate } from "../submission/rate.ts";
import { SubmissionSink } from "../submission/sink.ts";

/** Deadline for the short replies written here (refusals, the last-resort 421). */
const REFUSAL_WRITE_TIMEOUT_MS = 5_000;

/** The submission port's extras: AUTH before MAIL, the sender's domains, hourly limits. */
export interface SubmissionMode {
  readonly throttle: AuthThrottle;
  readonly rate: SubmissionRate;
  readonly maxRecipients: number;
  /** Connect → successful AUTH (`submission.auth_timeout`). */
  readonly authTimeoutMs: number;
  readonly fakeSaltKey?: Uint8Array;
}

/**
 * Serves one accepted SMTP connection to the end; never throws. With `submission`, the same
 * receiver and queue sink serve the submission port (AUTH required, SubmissionSink policy).
 */
export async function handleSmtpConnection(
  conn: Conn,
  deps: ServeDeps,
  // Apart from deps, not spread into a copy of them: a copy per connection cost ~6 µs at an MX
  // (deps has a getter, which takes object spread off its fast path).
  session: {
    readonly limiter: ConnectionLimiter;
    /** Told how shutdown can ask whether the session is inside a transaction. */
    readonly activity?: SessionActivity;
    readonly submission?: SubmissionMode;
  },
): Promise<void> {
  const { config } = deps;
  const { limiter, submission } = session;
  const proto = submission === undefined ? "smtp" : "submission";
  const log = deps.log.with({ conn: conn.id, proto });
  const ip = conn.remoteAddress;
  const maxRecipients = submission?.maxRecipients ?? config.smtp.maxRecipients;
  const ticket = await admitConnection(conn, limiter, { log, proto: "smtp" });
  if (ticket === undefined) return;
  try {
    const queueSink = new QueueSink({
      store: deps.store,
      // Read at every RCPT: a user added while serve runs is accepted at once (README.md).
      isLocalDomain: (domain: string) => deps.credentials.ownerOf(domain) !== undefined,
      log,
      maxRecipients,
      ...(deps.observe ? { events: deps.observe.metrics.smtp } : {}),
      quotaOf: (domain: string) => quotaOf(config, domain),
      ...(deps.disk === undefined ? {} : { onStorageFull: deps.disk.refused }),
      // Only behind AUTH (SubmissionSink): the MX port never takes mail for other domains.
      ...(submission === undefined ? {} : {
        deliverForeign: true,
        onOutboundQueued: () => deps.outbound?.wake(),
      }),
    });
    const policy = submission === undefined ? queueSink : new SubmissionSink({
      inner: queueSink,
      domainsOf: (user) => deps.credentials.domainsOf(user),
      hasUser: (user) => deps.credentials.hasUser(user),
      rate: submission.rate,
      log,
    });
    // One `queued` / `refused` line per message with the client (the message trace).
    const sink = new TracedSink(policy, { log, client: ip });
    if (session.activity) session.activity.isBusy = () => sink.isInTransaction;
    const receiver = new SmtpReceiver({
      conn,
      // The queue writer copies every body chunk: free socket chunks at once (bounded memory).
      reader: new LineReader(conn, { releaseConsumed: true }),
      sink,
      log,
      options: {
        hostname: config.hostname,
        maxMessageBytes: config.smtp.maxMessageSize,
        maxRecipients,
        commandTimeoutMs: config.smtp.timeoutMs,
        // A body line with its CRLF, measured as DATA carries it (src/wire/body_check.ts).
        maxDataLineBytes: config.smtp.maxLineLength + 2,
        maxErrors: MAX_SESSION_ERRORS,
        maxIdleCommands: MAX_IDLE_COMMANDS,
        maxAttempts: maxAttemptsFor(maxRecipients),
        addTraceHeader: true,
        ...(deps.secureContext ? { tls: { secureContext: deps.secureContext } } : {}),
        events: sink.receiverEvents(deps.observe?.metrics.smtp),
        ...(submission === undefined ? {} : {
          auth: new SubmissionAuth({
            credentials: deps.credentials,
            throttle: submission.throttle,
            log,
            hostname: config.hostname,
            timeoutMs: config.smtp.timeoutMs,
            authTimeoutMs: submission.authTimeoutMs,
            remoteAddress: ip,
            ...(submission.fakeSaltKey ? { fakeSaltKey: submission.fakeSaltKey } : {}),
            ...(deps.observe
              ? { onFailure: (m: string) => deps.observe?.metrics.odmr.authFailure(m) }
              : {}),
          }),
        }),
      },
    });
    await receiver.run();
  } catch (err) {
    log.error("session_failed", {
      peer: ip,
      reason: err instanceof Error ? `${err.name}: ${err.message}` : String(err),
    });
    await writeAndClose(conn, reply(421, "4.3.0", "Temporary server error, try again later"));
  } finally {
    ticket.release();
    await conn.close();
  }
}

async function writeAndClose(conn: Conn, r: ReturnType<typeof reply>): Promise<void> {
  try {
    await conn.write(formatReply(r), { flush: true, timeoutMs: REFUSAL_WRITE_TIMEOUT_MS });
  } catch {
    // The peer is gone: nothing more to tell it.
  } finally {
    await conn.close();
  }
}
