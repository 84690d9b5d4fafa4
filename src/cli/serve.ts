/**
 * `serve`: the provider. Checks the certificate, opens the queue, binds every smtp and odmr
 * listener, logs one `listening` event per listener with the address actually bound, runs
 * sessions and the outbound worker; SIGHUP reloads the certificate (never stops serve);
 * SIGINT/SIGTERM stops accepting, closes idle sessions with 421, lets busy ones and outbound
 * deliveries finish for a bounded grace, closes the DB. Mail not yet acknowledged with 250 when a session is cut is simply not acknowledged.
 */
import { errorText } from "../errors.ts";
import type tls from "node:tls";
import type { Config, ListenEntry } from "../config/types.ts";
import type { QueueStore } from "../queue/types.ts";
import type { CredentialStore } from "../auth/store.ts";
import { openServeBackend, type ServeBackend } from "./_backend.ts";
import { ServeBusyError } from "../queue/serve_lock.ts";
import { QueueMovedError } from "../queue/moved_mark.ts";
import { joinHostPort, listen, type Listener } from "../net/listener.ts";
import { FdAlarm } from "../net/fd_alarm.ts";
import type { Conn } from "../net/conn.ts";
import { createProcessLogger, notice } from "../observe/log.ts";
import type { Logger } from "../observe/log.ts";
import { PROGRAM_NAME } from "../version.ts";
import { ConnectionLimiter, handshakeAdmission } from "./_serve_limits.ts";
import { type SessionActivity, SessionSet } from "./_serve_sessions.ts";
import { endSessions, takeStartSignals, withinMs } from "./_serve_shutdown.ts";
import type { StartSignals } from "./_serve_shutdown.ts";
import type { ServeTls } from "./_serve_tls.ts";
import { NO_EVENTS } from "../odmr/events.ts";
import { handleSmtpConnection, type SubmissionMode } from "./_serve_smtp.ts";
import { handleOdmrConnection, noticeDrain } from "./_serve_odmr.ts";
import { SubmissionRate } from "../submission/rate.ts";
import { AuthThrottle } from "../auth/throttle.ts";
import { loadFakeSaltKey } from "../auth/fake_salt_key.ts";
import { startMaintenance } from "./_serve_maintenance.ts";
import { createOutboundWorker } from "./_serve_outbound.ts";
import { exposedFullGc, loggedCollect, QuietCollector } from "./_serve_quiet_gc.ts";
import { OpenSessions, type ServeDeps, type ServeObserve } from "./_serve_deps.ts";

export type { ServeDeps, ServeObserve };
import { openServeObserve } from "./_serve_observe.ts";
import type { MetricsServer } from "../observe/http.ts";

/** How long sessions may run on after SIGINT/SIGTERM before they are cut. */
export const SHUTDOWN_GRACE_MS = 10_000;
/** How long a metrics request in flight may delay the exit. */
const METRICS_CLOSE_WAIT_MS = 300;
/** Of the second past the grace that a stop may take, what is left for the process to exit. */
const EXIT_MARGIN_MS = 500;

/** A bound listener as announced in the `listening` event. */
export interface BoundListener {
  readonly proto: "smtp" | "odmr" | "submission" | "metrics";
  readonly address: string;
  readonly tls: "none" | "starttls" | "implicit";
}

/** A running server. */
export interface RunningServer {
  readonly listeners: readonly BoundListener[];
  /** Serves the connections held since the start (`startServer`'s `isHeld`), and later ones. */
  open(): void;
  /** Stops accepting, waits up to `graceMs` for sessions, cuts the rest (and any held). */
  stop(graceMs?: number): Promise<void>;
}

/**
 * Runs `serve` until SIGINT or SIGTERM; returns the exit code. `stderr` gets the one `error:`
 * line of a refusal the config must fix (a SQLite queue moved to PostgreSQL: exit 2).
 */
export async function serveCommand(
  config: Config,
  stderr: (text: string) => void,
): Promise<number> {
  const log = createProcessLogger({ level: config.log.level, format: config.log.format });
  const signals = takeStartSignals(log);
  try {
    return await serveUntilSignal(config, log, signals);
  } catch (err) {
    if (!(err instanceof QueueMovedError)) throw err;
    stderr(`error: ${err.message}\n`);
    return 2;
  } finally {
    signals.release();
  }
}

async function serveUntilSignal(
  config: Config,
  log: Logger,
  signals: StartSignals,
): Promise<number> {
  let serveTls: ServeTls | undefined;
  // The certificate code (node:tls) loads only with a `tls` section: an idle serve without
  // TLS does without it.
  const certificates = config.tls === undefined ? undefined : await import("./_serve_tls.ts");
  try {
    serveTls = certificates?.ServeTls.open(config, { log });
  } catch (err) {
    if (certificates === undefined || !(err instanceof certificates.CertificateError)) throw err;
    log.error("startup_failed", certificates.failureFields(config, err));
    return 2;
  }
  let store: QueueStore;
  let credentials: CredentialStore;
  let observe: ServeObserve;
  let backend: ServeBackend;
  const sessions = new OpenSessions();
  /** Once stopping: when the backend's close must have ended (`performance.now()` time). */
  let closeBy: number | undefined;
  try {
    backend = await openServeBackend(config, {
      logger: log,
      isAlone: () => sessions.isAlone(),
      // The queue copies its WAL into the database file only while nobody is connected.
      isIdle: () => sessions.open === 0,
    });
    store = backend.store;
    credentials = backend.credentials;
    observe = await openServeObserve(config, backend, log);
  } catch (err) {
    if (err instanceof QueueMovedError) throw err;
    if (err instanceof ServeBusyError) {
      // Refused before any port is bound or the queue is touched: the running one stays alone.
      log.error("startup_failed", { reason: err.message });
      return 1;
    }
    log.error("startup_failed", {
      reason: `Cannot open the queue ${queueWhere(config)}: ${errorText(err)}`,
    });
    return 1;
  }
  serveTls?.onPair((pair) => observe.metrics.tlsCertificate(pair.notAfter));
  const tlsNow = serveTls;
  // Always: failure reports to senders go out through it even without submission.
  const outbound = createOutboundWorker({
    config,
    store,
    credentials,
    log,
    dkimKeys: backend.dkimKeys,
    events: observe.metrics.outbound,
  });
  const deps: ServeDeps = {
    config,
    store,
    credentials,
    log,
    observe,
    fakeSaltKey: backend.fakeSaltKey,
    outbound,
    sessions,
    ...(backend.disk === undefined ? {} : { disk: backend.disk }),
    get secureContext() {
      return tlsNow?.current;
    },
  };
  try {
    let server: RunningServer;
    try {
      server = await startServer(deps, true);
    } catch (err) {
      log.error("startup_failed", { reason: errorText(err) });
      return 1;
    }
    // A previous process killed mid-drain left its leases: nothing of ours holds one yet (no
    // session has run: one that had could have taken a lease, released here under its drain).
    // After binding: a second serve of the same node fails there, before touching the leases
    // of the one running.
    let stale: number;
    try {
      stale = await store.releaseAllLeases();
    } catch (err) {
      // Like every other failure to start: one startup_failed line, exit 1, no port left open.
      log.error("startup_failed", {
        reason: `Cannot release this node's stale leases ${queueWhere(config)}: ${errorText(err)}`,
      });
      await server.stop(0);
      return 1;
    }
    if (stale > 0) log.warn("stale_leases_released", { count: stale });
    server.open();
    // Listen for SIGTERM before announcing readiness: a supervisor may stop us right after.
    const stopSignal = signals.stopRequested();
    signals.setHangupHandler(() => {
      if (tlsNow === undefined) log.info("reload_ignored", { reason: "no tls section" });
      else tlsNow.reload("signal");
    });
    tlsNow?.watch();
    // Scripts and tests wait for this line: every listener is bound and announced above it.
    log.info("ready", { listeners: server.listeners.length });
    if (credentials.listUsers().length === 0) {
      log.warn("no_users", {
        hint: `no user owns a domain yet, so all mail is refused: run "${PROGRAM_NAME} ` +
          `user add NAME --domain example.org" (works while serve is running)`,
      });
    }
    const maintenance = startMaintenance(store, {
      config,
      isLocalDomain: (domain) => credentials.ownerOf(domain) !== undefined,
      log,
      onReport: (report) => observe.metrics.maintenance(report),
    });
    // After the stale leases are gone: they would hide due destinations until they expire.
    outbound.start();
    // Start-up's garbage (compilation, migrations, the config) goes once nobody is connected.
    const quiet = new QuietCollector({
      collect: loggedCollect(exposedFullGc(), log),
      isQuiet: () => sessions.open === 0,
    });
    sessions.onActivity = () => quiet.busy();
    quiet.busy();
    const signal = await Promise.race([stopSignal, backend.lost ?? stopSignal]);
    closeBy = performance.now() + SHUTDOWN_GRACE_MS + 1_000 - EXIT_MARGIN_MS;
    quiet.stop();
    tlsNow?.stop();
    log.info("stopping", { signal, grace_ms: SHUTDOWN_GRACE_MS });
    // Within the same grace: the message in flight finishes, the rest stays queued. A
    // maintenance pass in progress gets the grace too, then is left to the store's close: each
    // of its steps is a transaction of its own (a pass stuck on a silent PostgreSQL connection
    // waited up to its 5-minute deadline here, before `stopping`).
    await Promise.all([
      server.stop(SHUTDOWN_GRACE_MS),
      outbound.stop(SHUTDOWN_GRACE_MS),
      withinMs(maintenance.stop(), SHUTDOWN_GRACE_MS),
    ]);
    log.info("stopped");
    return signal === "node_lock_lost" ? 1 : 0;
  } finally {
    // Within the grace + 1 s of the signal: a database gone silent (UNLISTEN, the pools' end)
    // must not hold the exit; nothing acknowledged waits on the close.
    if (closeBy === undefined) await backend.close();
    else await withinMs(backend.close(), Math.max(0, closeBy - performance.now()));
  }
}

/** Where the queue is, for a startup_failed line. */
function queueWhere(config: Config): string {
  return config.queue.backend === "postgres" ? "in PostgreSQL" : `in data_dir "${config.dataDir}"`;
}

/**
 * Binds every listener of the config and serves; the caller owns the store's lifetime. `isHeld`:
 * connections accepted before `open()` wait for it (up to `smtp.max_connections`; more are
 * closed), and a stop closes them unserved.
 */
export async function startServer(deps: ServeDeps, isHeld = false): Promise<RunningServer> {
  const { config, log } = deps;
  const sessions = new SessionSet(log);
  const limits = {
    maxTotal: config.smtp.maxConnections,
    maxPerIp: config.smtp.maxConnectionsPerIp,
  };
  const limiter = new ConnectionLimiter(limits);
  // The ODMR port gets its own counts with the same limits (a flood there must not starve MX).
  // Until AUTH, an ODMR connection can be evicted for a newcomer: strangers cannot hold
  // every slot a customer needs (with NOOP just under the timeout, or many addresses).
  const odmrLimiter = new ConnectionLimiter({ ...limits, evictUnauthenticated: true });
  // Implicit-TLS handshakes of every port, counted apart (_serve_limits.ts).
  const admitHandshake = handshakeAdmission(limits);
  const throttle = new AuthThrottle();
  const fdAlarm = new FdAlarm(log); // out of descriptors: one line per episode, every port
  // Unknown user names get the same SCRAM salt across restarts and nodes (no existence oracle).
  const fakeSaltKey = deps.fakeSaltKey ?? loadFakeSaltKey(config.dataDir);
  const listeners: Listener[] = [];
  const bound: BoundListener[] = [];
  let isStopping = false;
  /** While held: the accepted connections and how each is served once open. */
  let held: { conn: Conn; serve: () => void }[] | undefined = isHeld ? [] : undefined;
  let metricsServer: MetricsServer | undefined;
  const metrics = deps.observe?.metrics;
  /** Runs a session counted in `odmr_relay_connections{proto}` while it lasts. */
  const counted = async (proto: "smtp" | "odmr", run: () => Promise<void>) => {
    metrics?.connectionOpened(proto);
    deps.sessions?.enter();
    try {
      await run();
    } finally {
      deps.sessions?.leave();
      metrics?.connectionClosed(proto);
    }
  };

  const bind = async (
    proto: "smtp" | "odmr" | "submission",
    entry: ListenEntry,
    onConn: (c: Conn) => void,
  ) => {
    const mode = entry.tls === "implicit" ? "implicit" : deps.secureContext ? "starttls" : "none";
    const listener = await listen({
      host: entry.host,
      port: entry.port,
      // No TLS on this listener: plain TCP on Deno.TcpConn (src/net/native_conn.ts).
      native: mode === "none",
      // An SMTP session reads a command, answers it, reads the next: no read-ahead, so the
      // socket closes after QUIT with no read in flight to cancel. ODMR reads ahead (the
      // provider reads the customer's replies to a window of messages).
      readAhead: proto === "odmr",
      // SMTP sessions read with releaseConsumed (_serve_smtp.ts): nothing keeps a view of the
      // read buffer once a session ended, so the next connection takes it over.
      recycleReadBuffer: proto !== "odmr",
      fdAlarm,
      // Asked at each connection: a reloaded certificate reaches new handshakes.
      ...(entry.tls === "implicit" && deps.secureContext
        ? { secureContext: () => deps.secureContext as tls.SecureContext, admitHandshake }
        : {}),
      // ODMR: a client certificate may log in with AUTH EXTERNAL (never required).
      ...(proto === "odmr" ? { requestCert: true } : {}),
      onTlsFailure: (peer, err) => {
        // A peer fault (anyone can send garbage): info, never error.
        log.info("tls_failed", { proto, peer, reason: errorText(err) });
      },
      onConn: (conn) => {
        if (isStopping || (held !== undefined && held.length >= config.smtp.maxConnections)) {
          conn.destroy();
          return;
        }
        if (held === undefined) onConn(conn);
        else held.push({ conn, serve: () => onConn(conn) });
      },
    }).catch((err: unknown) => {
      throw new Error(
        `Cannot listen on ${proto} ${joinHostPort(entry.host, entry.port)}: ${bindHint(err)}`,
      );
    });
    listeners.push(listener);
    bound.push({ proto, address: listener.address, tls: mode });
    notice(log, "listening", { proto, address: listener.address, tls: mode });
  };

  const open = () => {
    const waiting = held ?? [];
    held = undefined;
    for (const h of waiting) h.serve();
  };

  const stop = async (graceMs = SHUTDOWN_GRACE_MS) => {
    isStopping = true;
    await Promise.all(listeners.map((l) => l.close()));
    for (const h of held ?? []) h.conn.destroy();
    held = undefined;
    const cut = await endSessions(sessions, graceMs);
    if (cut > 0) log.warn("sessions_cut", { count: cut, grace_ms: graceMs });
    // Last: /healthz answers 503 "stopping" while sessions drain. A scrape in flight gets
    // a moment, not a say in when serve exits.
    if (metricsServer) {
      await withinMs(metricsServer.close().catch(() => {}), METRICS_CLOSE_WAIT_MS);
    }
  };

  /** An SMTP session: the MX's, or a submission listener's when `submission` is given. */
  const serveSmtp = (conn: Conn, submission?: SubmissionMode) => {
    const activity: SessionActivity = { isBusy: () => false };
    const session = submission === undefined
      ? { limiter, activity }
      : { limiter, activity, submission };
    // Submission is counted with the MX's connections: the same receiver, limits and gauge label.
    sessions.add(
      conn,
      () => counted("smtp", () => handleSmtpConnection(conn, deps, session)),
      () => activity.isBusy(),
    );
  };

  try {
    for (const entry of config.smtp.listen) {
      await bind("smtp", entry, (conn) => serveSmtp(conn));
    }
    const sub = config.submission;
    if (sub !== undefined) {
      const submission: SubmissionMode = {
        throttle,
        rate: new SubmissionRate({
          messagesPerHour: sub.maxMessagesPerHour,
          recipientsPerHour: sub.maxRecipientsPerHour,
        }),
        maxRecipients: sub.maxRecipients,
        authTimeoutMs: sub.authTimeoutMs,
        fakeSaltKey,
      };
      for (const entry of sub.listen) {
        await bind("submission", entry, (conn) => serveSmtp(conn, submission));
      }
    }
    for (const entry of config.odmr.listen) {
      await bind("odmr", entry, (conn) => {
        // Busy from the 250 to ATRN on (the drain); before that a session only waits for
        // commands, and shutdown tells it 421 at once.
        let isDraining = false;
        const odmrDeps = {
          ...deps,
          throttle,
          fakeSaltKey,
          limiter: odmrLimiter,
          events: noticeDrain(metrics?.odmr ?? NO_EVENTS, () => isDraining = true),
        };
        sessions.add(
          conn,
          () =>
            counted(
              "odmr",
              () => handleOdmrConnection(conn, odmrDeps, entry),
            ),
          () => isDraining,
        );
      });
    }
    const observe = deps.observe;
    if (config.metrics !== undefined && observe !== undefined) {
      const { host, port } = config.metrics.listen;
      // node:net loads only with `metrics:` set.
      const { startMetricsServer } = await import("../observe/http.ts");
      metricsServer = await startMetricsServer({
        host,
        port,
        metrics: observe.metrics,
        health: async () => {
          if (isStopping) return "stopping";
          // Held (PostgreSQL: the stale leases' release waits): no mail can be queued yet.
          if (held !== undefined) return "starting";
          try {
            await observe.pingDatabase();
          } catch (err) {
            return `database not answering: ${errorText(err)}`;
          }
          return undefined;
        },
      }).catch((err: unknown) => {
        throw new Error(`Cannot listen on metrics ${joinHostPort(host, port)}: ${bindHint(err)}`);
      });
      bound.push({ proto: "metrics", address: metricsServer.address, tls: "none" });
      notice(log, "listening", { proto: "metrics", address: metricsServer.address, tls: "none" });
    }
  } catch (err) {
    await stop(0);
    throw err;
  }
  return { listeners: bound, open, stop };
}

/** The bind error, with the fix for the usual one (ports below 1024). */
function bindHint(err: unknown): string {
  const text = errorText(err);
  if (/EACCES|permission/i.test(text)) {
    return `${text}: ports below 1024 need root or CAP_NET_BIND_SERVICE ` +
      `(e.g. setcap cap_net_bind_service=+ep on the binary), or use a port of 1024 and above`;
  }
  return text;
}
