/**
 * The metrics of a `serve` process and how `/healthz` asks the database. prom-client is
 * loaded (import()) only when `metrics:` is set: start-up time and resident memory of the
 * default run (issue 13, tests/cli/lazy_imports_test.ts).
 */
import type { Config } from "../config/types.ts";
import type { Logger } from "../observe/log.ts";
import { UnservedMetrics } from "../observe/unserved_metrics.ts";
import type { ServeBackend } from "./_backend.ts";
import type { ServeObserve } from "./_serve_deps.ts";

/** Builds the metrics for `config` over the backend's queue, users and per-user state. */
export async function openServeObserve(
  config: Config,
  backend: ServeBackend,
  log: Logger,
): Promise<ServeObserve> {
  const { store: queue, credentials: users } = backend;
  return {
    metrics: config.metrics === undefined
      ? new UnservedMetrics({ atrnState: backend.userState, log })
      : new (await import("../observe/metrics.ts")).RelayMetrics({
        users: () => users.listUsers(),
        domainStats: () => queue.domainStats(),
        atrnState: backend.userState,
        log,
      }),
    pingDatabase: () => {
      const full = backend.disk?.reason();
      return full === undefined ? queue.ping() : Promise.reject(new Error(full));
    },
  };
}
