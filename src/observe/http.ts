/**
 * The `metrics.listen` HTTP server: `GET /metrics` (Prometheus text) and `GET /healthz` (200
 * `ok`, or 503 with a one-line reason). Anything else is 404. Knows nothing of SMTP: the caller
 * hands in the exposition and the health check. A deliberately small HTTP/1.1 server over
 * node:net (one request per connection, `Connection: close`) so that it can be bounded where
 * Deno.serve cannot: at most `maxConnections` at once (more get 503, and as many again may
 * linger to read it; past that they are closed at once), a request head of at most 8 KiB, and a
 * deadline from connect to the end of the response (issue 10 item 8).
 */
import net from "node:net";
import { bindServer } from "../net/bind.ts";
import { errorText } from "../errors.ts";

/** Something that renders a Prometheus text exposition. */
export interface Exposition {
  readonly contentType: string;
  expose(): Promise<string>;
}

/**
 * Connections served at once; more get `503` and are closed. As many refused ones may linger to
 * read their 503; more are closed at once, so that a flood holds a bounded number of descriptors.
 */
export const METRICS_MAX_CONNECTIONS = 16;
/** From connect to the end of the response; a silent or trickling client is cut then. */
export const METRICS_IDLE_TIMEOUT_MS = 10_000;
/** Request line and headers; a longer head gets `431`. */
export const METRICS_MAX_HEAD_BYTES = 8 * 1024;

/** Options of `startMetricsServer`. */
export interface MetricsServerOptions {
  readonly host: string;
  readonly port: number;
  readonly metrics: Exposition;
  /** `undefined` when healthy, else why not (one line, no secrets); omitted: always healthy. */
  readonly health?: () => Promise<string | undefined> | string | undefined;
  /** Default `METRICS_MAX_CONNECTIONS`. */
  readonly maxConnections?: number;
  /** Default `METRICS_IDLE_TIMEOUT_MS`. */
  readonly idleTimeoutMs?: number;
}

/** A running metrics server. */
export interface MetricsServer {
  /** The address actually bound, `HOST:PORT` (port 0 resolved). */
  readonly address: string;
  readonly port: number;
  close(): Promise<void>;
}

/** Binds `host:port` and serves until `close()`; throws when the address cannot be bound. */
export async function startMetricsServer(opts: MetricsServerOptions): Promise<MetricsServer> {
  const maxConnections = opts.maxConnections ?? METRICS_MAX_CONNECTIONS;
  const idleTimeoutMs = opts.idleTimeoutMs ?? METRICS_IDLE_TIMEOUT_MS;
  /** Connections being served (counted against the limit). */
  const open = new Set<net.Socket>();
  /** Refused connections given REFUSAL_LINGER_MS to read their 503 (at most maxConnections). */
  const refusing = new Set<net.Socket>();
  /** Every socket, refused ones too, so that close() can end them all. */
  const all = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    all.add(socket);
    socket.once("close", () => all.delete(socket));
    socket.on("error", () => socket.destroy());
    if (open.size >= maxConnections) {
      // Each lingering refusal holds a descriptor: past the bound, one is closed at once, or a
      // flood of clients that never hang up held one each for a second, any number of them.
      if (refusing.size >= maxConnections) {
        socket.destroy();
        return;
      }
      refusing.add(socket);
      socket.once("close", () => refusing.delete(socket));
      socket.end(serialize({ status: 503, body: "busy\n", type: TEXT_TYPE }));
      const timer = setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS);
      socket.once("close", () => clearTimeout(timer));
      return;
    }
    open.add(socket);
    socket.once("close", () => open.delete(socket));
    serveOne(socket, opts, idleTimeoutMs);
  });
  const bound = await bindServer(server, opts.host, opts.port);
  return {
    ...bound,
    close: () =>
      new Promise<void>((done) => {
        server.close(() => done());
        for (const s of all) s.destroy();
      }),
  };
}

/** How long a refused connection may take to read its 503. */
const REFUSAL_LINGER_MS = 1_000;
const CRLF_CRLF = new Uint8Array([13, 10, 13, 10]);
const TEXT_TYPE = "text/plain; charset=utf-8";

/**
 * Reads one request head, answers it, closes; every wait is under the one deadline. Each octet is
 * looked at once, whatever the chunks (a client trickling its head one octet at a time cost the
 * event loop the square of its length: the whole head was copied and searched again each time).
 */
function serveOne(socket: net.Socket, opts: MetricsServerOptions, idleTimeoutMs: number): void {
  const timer = setTimeout(() => socket.destroy(), idleTimeoutMs);
  socket.once("close", () => clearTimeout(timer));
  const parts: Uint8Array[] = [];
  let seen = 0;
  /** Octets of CRLF CRLF matched so far (at most 3 between chunks). */
  let matched = 0;
  let isAnswered = false;
  const onData = (chunk: Uint8Array) => {
    if (isAnswered) return;
    let end = -1;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i];
      matched = b === CRLF_CRLF[matched] ? matched + 1 : (b === 13 ? 1 : 0);
      if (matched === 4) {
        end = seen + i - 3;
        break;
      }
    }
    seen += chunk.length;
    // Without its end yet, a head may still be of the allowed size until 3 octets past it.
    if (end < 0 && seen <= METRICS_MAX_HEAD_BYTES + 3) {
      parts.push(chunk);
      return;
    }
    isAnswered = true;
    socket.off("data", onData);
    if (end < 0 || end > METRICS_MAX_HEAD_BYTES) {
      socket.end(serialize({ status: 431, body: "request head too large\n", type: TEXT_TYPE }));
      return;
    }
    parts.push(chunk);
    answer(new TextDecoder().decode(concat(parts).subarray(0, end)), opts).then(
      (response) => socket.end(response),
      () => socket.end(serialize({ status: 500, body: "internal error\n", type: TEXT_TYPE })),
    );
  };
  socket.on("data", onData);
}

async function answer(headText: string, opts: MetricsServerOptions): Promise<Uint8Array> {
  const requestLine = headText.split("\r\n", 1)[0] ?? "";
  const m = /^([A-Z]+) (\S+) HTTP\/1\.[01]$/.exec(requestLine);
  if (m === null) return serialize({ status: 400, body: "bad request\n", type: TEXT_TYPE });
  const [, method = "", target = ""] = m;
  const path = target.split("?", 1)[0] ?? "";
  const r = await handle(method, path, opts);
  return serialize(r, { hasBody: method !== "HEAD" });
}

interface Answer {
  readonly status: number;
  readonly body: string;
  readonly type: string;
  readonly extra?: string;
}

async function handle(method: string, path: string, opts: MetricsServerOptions): Promise<Answer> {
  const isRead = method === "GET" || method === "HEAD";
  if (path === "/metrics" && isRead) {
    return { status: 200, body: await opts.metrics.expose(), type: opts.metrics.contentType };
  }
  if (path === "/healthz" && isRead) {
    let reason: string | undefined;
    try {
      reason = await opts.health?.();
    } catch (err) {
      reason = errorText(err);
    }
    return reason === undefined
      ? { status: 200, body: "ok\n", type: TEXT_TYPE }
      : { status: 503, body: `${oneLine(reason)}\n`, type: TEXT_TYPE };
  }
  if (path === "/metrics" || path === "/healthz") {
    return {
      status: 405,
      body: "method not allowed\n",
      type: TEXT_TYPE,
      extra: "allow: GET, HEAD",
    };
  }
  return { status: 404, body: "not found\n", type: TEXT_TYPE };
}

const REASONS: Record<number, string> = {
  200: "OK",
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** The whole response; HEAD gets the same headers (and length) without the body. */
function serialize(a: Answer, opts: { hasBody: boolean } = { hasBody: true }): Uint8Array {
  const bytes = new TextEncoder().encode(a.body);
  const headers = [
    `HTTP/1.1 ${a.status} ${REASONS[a.status] ?? "Unknown"}`,
    `content-type: ${a.type}`,
    `content-length: ${bytes.length}`,
    "connection: close",
    ...(a.extra === undefined ? [] : [a.extra]),
  ];
  const head = new TextEncoder().encode(`${headers.join("\r\n")}\r\n\r\n`);
  if (!opts.hasBody) return head;
  const out = new Uint8Array(head.length + bytes.length);
  out.set(head);
  out.set(bytes, head.length);
  return out;
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0] as Uint8Array;
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

function oneLine(text: string): string {
  return text.replace(/[\r\n]+/g, " ").slice(0, 300);
}
