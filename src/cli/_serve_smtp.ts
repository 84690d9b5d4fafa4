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
import { MAX_IDLE_COMMANDS, MAX_SESSION_ERRORS } from "../smtp/session_budget.ts";
import type { ConnectionLimiter } from "./_serve_limits.ts";
import { admitConnection } from "./_serve_admission.ts";
import type { ServeDeps } from "./_serve_deps.ts";
import { TracedSink } from "./_serve_smtp_trace.ts";
import type { SessionActivity } from "./_serve_sessions.ts";
import { quotaOf } from "../config/policy.ts";

/** Deadline for the short replies written here (refusals, the last-resort 421). */
const REFUSAL_WRITE_TIMEOUT_MS = 5_000;

/** Serves one accepted SMTP connection to the end; never throws. */
export async function handleSmtpConnection(
  conn: Conn,
  deps: ServeDeps & {
    readonly limiter: ConnectionLimiter;
    /** Told how shutdown can ask whether the session is inside a transaction. */
    readonly activity?: SessionActivity;
  },
): Promise<void> {
  const { config, limiter } = deps;
  const log = deps.log.with({ conn: conn.id, proto: "smtp" });
  const ip = conn.remoteAddress;
  const ticket = await admitConnection(conn, limiter, { log, proto: "smtp" });
  if (ticket === undefined) return;
  try {
    const queueSink = new QueueSink({
      store: deps.store,
      // Read at every RCPT: a user added while serve runs is accepted at once (README.md).
      isLocalDomain: (domain: string) => deps.credentials.ownerOf(domain) !== undefined,
      log,
      maxRecipients: config.smtp.maxRecipients,
      ...(deps.observe ? { events: deps.observe.metrics.smtp } : {}),
      quotaOf: (domain: string) => quotaOf(config, domain),
    });
    // One `queued` / `refused` line per message with the client (the message trace).
    const sink = new TracedSink(queueSink, { log, client: ip });
    if (deps.activity) deps.activity.isBusy = () => sink.isInTransaction;
    const receiver = new SmtpReceiver({
      conn,
      // The queue writer copies every body chunk: free socket chunks at once (bounded memory).
      reader: new LineReader(conn, { releaseConsumed: true }),
      sink,
      log,
      options: {
        hostname: config.hostname,
        maxMessageBytes: config.smtp.maxMessageSize,
        maxRecipients: config.smtp.maxRecipients,
        commandTimeoutMs: config.smtp.timeoutMs,
        maxErrors: MAX_SESSION_ERRORS,
        maxIdleCommands: MAX_IDLE_COMMANDS,
        addTraceHeader: true,
        ...(deps.secureContext ? { tls: { secureContext: deps.secureContext } } : {}),
        events: sink.receiverEvents(deps.observe?.metrics.smtp),
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
