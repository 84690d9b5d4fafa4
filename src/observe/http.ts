/**
 * The `metrics.listen` HTTP server: `GET /metrics` (Prometheus text) and `GET /healthz` (200
 * `ok`, or 503 with a one-line reason). Anything else is 404. Knows nothing of SMTP: the caller
 * hands in the exposition and the health check. Deno.serve: binds port 0 and stops cleanly.
 */

/** Something that renders a Prometheus text exposition. */
export interface Exposition {
  readonly contentType: string;
  expose(): Promise<string>;
}

/** Options of `startMetricsServer`. */
export interface MetricsServerOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: Exposition;
  /** `undefined` when healthy, else why not (one line, no secrets); omitted: always healthy. */
  readonly health?: () => Promise<string | undefined> | string | undefined;
}

/** A running metrics server. */
export interface MetricsServer {
  /** The address actually bound, `HOST:PORT` (port 0 resolved). */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Binds `host:port` and serves until `close()`; throws when the address cannot be bound. */
export function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  return new Promise((resolve, reject) => {
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({
        hostname: opts.host,
        port: opts.port,
        onListen: (addr) => {
          const host = addr.hostname.includes(":") ? `[${addr.hostname}]` : addr.hostname;
          resolve({
            address: `${host}:${addr.port}`,
            port: addr.port,
            close: async () => {
              await server.shutdown();
            },
          });
        },
        onError: () => new Response("internal error\n", { status: 500, headers: TEXT }),
      }, (request) => handle(request, opts));
    } catch (err) {
      reject(err);
    }
  });
}

const TEXT = { "content-type": "text/plain; charset=utf-8" };

async function handle(request: Request, opts: MetricsServerOptions): Promise<Response> {
  const path = new URL(request.url).pathname;
  const isRead = request.method === "GET" || request.method === "HEAD";
  if (path === "/metrics" && isRead) {
    const body = await opts.metrics.expose();
    return new Response(request.method === "HEAD" ? null : body, {
      headers: { "content-type": opts.metrics.contentType },
    });
  }
  if (path === "/healthz" && isRead) {
    let reason: string | undefined;
    try {
      reason = await opts.health?.();
    } catch (err) {
      reason = err instanceof Error ? err.message : String(err);
    }
    const status = reason === undefined ? 200 : 503;
    const body = reason === undefined ? "ok\n" : `${oneLine(reason)}\n`;
    return new Response(request.method === "HEAD" ? null : body, { status, headers: TEXT });
  }
  if (path === "/metrics" || path === "/healthz") {
    return new Response("method not allowed\n", {
      status: 405,
      headers: { ...TEXT, allow: "GET, HEAD" },
    });
  }
  return new Response("not found\n", { status: 404, headers: TEXT });
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ").slice(0, 300);
}
