/**
 * Binds a `node:net` server: resolves with the address actually bound (port 0 resolved, IPv6
 * in brackets), rejects when it cannot be bound. Shared by the SMTP/ODMR listeners
 * (listener.ts) and the `/metrics` listener (observe/http.ts).
 */
import type net from "node:net";

/** Where a server listens. */
export interface BoundAddress {
  /** `HOST:PORT` (`[v6]:PORT`), the port as bound. */
  readonly address: string;
  readonly port: number;
}

/** `server.listen()` on `host:port` as a promise. */
export function bindServer(server: net.Server, host: string, port: number): Promise<BoundAddress> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      const addr = server.address();
      const bound = typeof addr === "object" && addr ? addr.port : port;
      const shown = host.includes(":") ? `[${host}]` : host;
      resolve({ address: `${shown}:${bound}`, port: bound });
    });
  });
}
