/**
 * `serve`: the provider. Opens the queue, binds every smtp and odmr listener, logs one
 * `listening` event per listener with the address actually bound, runs sessions, and on
 * SIGINT/SIGTERM stops accepting, lets sessions finish for a bounded grace, closes the DB.
 * Mail not yet acknowledged with 250 when a session is cut is simply not acknowledged.
 */
import type tls from "node:tls";
import type { Config, ListenEntry } from "../config/types.ts";
import type { QueueStore } from "../queue/types.ts";
import type { CredentialStore } from "../auth/store.ts";
import { openServeBackend } from "./_backend.ts";
import { listen, loadSecureContext } from "../net/listener.ts";
import type { Listener } from "../net/listener.ts";
import type { Conn } from "../net/conn.ts";
import { createLogger } from "../observe/log.ts";
import type { Logger } from "../observe/log.ts";
import { PROGRAM_NAME } from "../version.ts";
import { ConnectionLimiter } from "./_serve_limits.ts";
import { SessionSet } from "./_serve_sessions.ts";
import { handleSmtpConnection } from "./_serve_smtp.ts";
import { handleOdmrConnection } from "./_serve_odmr.ts";
import { AuthThrottle } from "../auth/throttle.ts";
import { startMaintenance } from "./_serve_maintenance.ts";
import { RelayMetrics } from "../observe/metrics.ts";
import { startMetricsServer } from "../observe/http.ts";
import type { MetricsServer } from "../observe/http.ts";

/** How long sessions may run on after SIGINT/SIGTERM before they are cut. */
export const SHUTDOWN_GRACE_MS = 10_000;

/** What every session handler gets. */
export interface ServeDeps {
  readonly config: Config;
  readonly store: QueueStore;
  readonly credentials: CredentialStore;
  readonly log: Logger;
  readonly secureContext: tls.SecureContext | undefined;
  /** Metrics fed by the sessions and served on `metrics.listen` (when configured). */
  readonly observe?: ServeObserve;
}

/** The metrics of a server and how `/healthz` asks the database. */
export interface ServeObserve {
  readonly metrics: RelayMetrics;
  /** Rejects when the database does not answer. */
  readonly pingDatabase: () => Promise<void>;
}

/** A bound listener as announced in the `listening` event. */
export interface BoundListener {
  readonly proto: "smtp" | "odmr" | "metrics";
  readonly address: string;
  readonly tls: "none" | "starttls" | "implicit";
}

/** A running server. */
export interface RunningServer {
  readonly listeners: readonly BoundListener[];
  /** Stops accepting, waits up to `graceMs` for sessions, cuts the rest. */
  stop(graceMs?: number): Promise<void>;
}

/** Runs `serve` until SIGINT or SIGTERM; returns the exit code. */
export async function serveCommand(config: Config): Promise<number> {
  const log = createLogger({ level: config.log.level, format: config.log.format });
  let secureContext: tls.SecureContext | undefined;
  if (config.tls !== undefined) {
    try {
      secureContext = loadSecureContext(config.tls.cert, config.tls.key);
    } catch (err) {
      log.error("startup_failed", {
        reason: `Cannot load TLS certificate "${config.tls.cert}" and key "${config.tls.key}": ${
          errorText(err)
        }`,
      });
      return 2;
    }
  }
  let store: QueueStore;
  let credentials: CredentialStore;
  let observe: ServeObserve;
  try {
    const backend = openServeBackend(config.dataDir, { logger: log });
    store = backend.store;
    credentials = backend.credentials;
    const queue = store;
    const users = credentials;
    observe = {
      metrics: new RelayMetrics({
        users: () => users.listUsers(),
        domainStats: () => queue.domainStats(),
        atrnState: backend.userState,
        log,
      }),
      pingDatabase: () => queue.ping(),
    };
  } catch (err) {
    log.error("startup_failed", {
      reason: `Cannot open the queue in data_dir "${config.dataDir}": ${errorText(err)}`,
    });
    return 1;
  }
  try {
    let server: RunningServer;
    try {
      server = await startServer({ config, store, credentials, log, secureContext, observe });
    } catch (err) {
      log.error("startup_failed", { reason: errorText(err) });
      return 1;
    }
    // A previous process killed mid-drain left its leases: nothing of ours holds one yet.
    const stale = await store.releaseAllLeases();
    if (stale > 0) log.warn("stale_leases_released", { count: stale });
    // Listen for SIGTERM before announcing readiness: a supervisor may stop us right after.
    const stopSignal = waitForSignal();
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
    const signal = await stopSignal;
    await maintenance.stop();
    log.info("stopping", { signal, grace_ms: SHUTDOWN_GRACE_MS });
    await server.stop(SHUTDOWN_GRACE_MS);
    log.info("stopped");
    return 0;
  } finally {
    await store.close();
  }
}

/** Binds every listener of the config and serves; the caller owns the store's lifetime. */
export async function startServer(deps: ServeDeps): Promise<RunningServer> {
  const { config, log } = deps;
  const sessions = new SessionSet(log);
  const limiter = new ConnectionLimiter({
    maxTotal: config.smtp.maxConnections,
    maxPerIp: config.smtp.maxConnectionsPerIp,
  });
  // The ODMR port gets its own counts with the same limits (a flood there must not starve MX).
  const odmrLimiter = new ConnectionLimiter({
    maxTotal: config.smtp.maxConnections,
    maxPerIp: config.smtp.maxConnectionsPerIp,
  });
  const throttle = new AuthThrottle();
  const listeners: Listener[] = [];
  const bound: BoundListener[] = [];
  let isStopping = false;
  let metricsServer: MetricsServer | undefined;
  const metrics = deps.observe?.metrics;
  /** Runs a session counted in `odmr_relay_connections{proto}` while it lasts. */
  const counted = async (proto: "smtp" | "odmr", run: () => Promise<void>) => {
    metrics?.connectionOpened(proto);
    try {
      await run();
    } finally {
      metrics?.connectionClosed(proto);
    }
  };

  const bind = async (proto: "smtp" | "odmr", entry: ListenEntry, onConn: (c: Conn) => void) => {
    const listener = await listen({
      host: entry.host,
      port: entry.port,
      ...(entry.tls === "implicit" && deps.secureContext
        ? { secureContext: deps.secureContext }
        : {}),
      onConn: (conn) => {
        if (isStopping) {
          conn.destroy();
          return;
        }
        onConn(conn);
      },
    }).catch((err: unknown) => {
      throw new Error(`Cannot listen on ${proto} ${entry.host}:${entry.port}: ${bindHint(err)}`);
    });
    listeners.push(listener);
    const mode = entry.tls === "implicit" ? "implicit" : deps.secureContext ? "starttls" : "none";
    bound.push({ proto, address: listener.address, tls: mode });
    log.info("listening", { proto, address: listener.address, tls: mode });
  };

  const stop = async (graceMs = SHUTDOWN_GRACE_MS) => {
    isStopping = true;
    await Promise.all(listeners.map((l) => l.close()));
    const cut = await sessions.drain(graceMs);
    if (cut > 0) log.warn("sessions_cut", { count: cut, grace_ms: graceMs });
    // Last: /healthz answers 503 "stopping" while sessions drain.
    await metricsServer?.close();
  };

  try {
    for (const entry of config.smtp.listen) {
      await bind("smtp", entry, (conn) => {
        sessions.add(
          conn,
          () => counted("smtp", () => handleSmtpConnection(conn, { ...deps, limiter })),
        );
      });
    }
    for (const entry of config.odmr.listen) {
      await bind("odmr", entry, (conn) => {
        const odmrDeps = {
          ...deps,
          throttle,
          limiter: odmrLimiter,
          ...(metrics ? { events: metrics.odmr } : {}),
        };
        sessions.add(
          conn,
          () => counted("odmr", () => handleOdmrConnection(conn, odmrDeps, entry)),
        );
      });
    }
    const observe = deps.observe;
    if (config.metrics !== undefined && observe !== undefined) {
      const { host, port } = config.metrics.listen;
      metricsServer = await startMetricsServer({
        host,
        port,
        metrics: observe.metrics,
        health: async () => {
          if (isStopping) return "stopping";
          try {
            await observe.pingDatabase();
          } catch (err) {
            return `database not answering: ${errorText(err)}`;
          }
          return undefined;
        },
      }).catch((err: unknown) => {
        throw new Error(`Cannot listen on metrics ${host}:${port}: ${bindHint(err)}`);
      });
      bound.push({ proto: "metrics", address: metricsServer.address, tls: "none" });
      log.info("listening", { proto: "metrics", address: metricsServer.address, tls: "none" });
    }
  } catch (err) {
    await stop(0);
    throw err;
  }
  return { listeners: bound, stop };
}

function waitForSignal(): Promise<Deno.Signal> {
  return new Promise((resolve) => {
    const signals: Deno.Signal[] = ["SIGINT", "SIGTERM"];
    const handlers = signals.map((signal) => {
      const handler = () => {
        signals.forEach((s, i) => Deno.removeSignalListener(s, handlers[i] as () => void));
        resolve(signal);
      };
      Deno.addSignalListener(signal, handler);
      return handler;
    });
  });
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

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
