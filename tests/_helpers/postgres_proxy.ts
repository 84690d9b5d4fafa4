/**
 * A TCP proxy between a client and the test's PostgreSQL (127.0.0.1, port picked at run
 * time) that can lose a connection the ways a restart or a network loses it: a reset (RST)
 * or PostgreSQL's own FATAL 57P01 then a close, at the moment a chosen message goes by; or,
 * in `silent` mode, accept new connections and never answer them (as a server that stops
 * accepting mid-shutdown, or a dead route, looks to a client).
 */
import { Buffer } from "node:buffer";
import net from "node:net";

/** How a cut connection ends for the client. */
export type Cut = "reset" | "fatal";

export interface PostgresProxy {
  readonly port: number;
  /** `url` with its port replaced by the proxy's. */
  via(url: string): string;
  /**
   * Cuts the next connection whose client sends bytes containing `text` (that message is
   * not forwarded); resolves when it did.
   */
  cutWhenSent(text: string, how: Cut): Promise<void>;
  /** Cuts every open connection now. */
  cutAll(how: Cut): void;
  /** true: new connections are accepted and never answered; false: passed through again. */
  setSilent(isSilent: boolean): void;
  /** Connections opened so far. */
  readonly connections: number;
  close(): Promise<void>;
}

/** The ErrorResponse PostgreSQL sends to each session at a fast shutdown. */
function adminShutdown(): Buffer {
  const fields = Buffer.from(
    "SFATAL\0VFATAL\0C57P01\0Mterminating connection due to administrator command\0\0",
  );
  const head = Buffer.alloc(5);
  head.write("E", 0);
  head.writeUInt32BE(fields.length + 4, 1);
  return Buffer.concat([head, fields]);
}

/** Starts a proxy to PostgreSQL on 127.0.0.1:`pgPort`. */
export async function startPostgresProxy(pgPort: number): Promise<PostgresProxy> {
  const open = new Set<{ client: net.Socket; upstream?: net.Socket }>();
  let isSilent = false;
  let count = 0;
  let trap: { text: string; how: Cut; done: () => void } | undefined;

  const cut = (pair: { client: net.Socket; upstream?: net.Socket }, how: Cut) => {
    open.delete(pair);
    pair.upstream?.destroy();
    if (how === "reset") pair.client.resetAndDestroy();
    else pair.client.end(adminShutdown());
  };

  const server = net.createServer((client) => {
    count++;
    client.on("error", () => {});
    if (isSilent) {
      const pair = { client };
      open.add(pair);
      client.on("data", () => {}); // read and never answer
      client.on("close", () => open.delete(pair));
      return;
    }
    const upstream = net.connect(pgPort, "127.0.0.1");
    const pair = { client, upstream };
    open.add(pair);
    upstream.on("error", () => {});
    client.on("data", (bytes: Buffer) => {
      if (trap !== undefined && bytes.includes(trap.text)) {
        const { how, done } = trap;
        trap = undefined;
        cut(pair, how);
        done();
        return;
      }
      upstream.write(bytes);
    });
    upstream.on("data", (bytes: Buffer) => client.write(bytes));
    upstream.on("close", () => client.destroy());
    client.on("close", () => {
      open.delete(pair);
      upstream.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    via: (url) => {
      const u = new URL(url);
      u.port = String(port);
      return u.toString();
    },
    cutWhenSent: (text, how) => new Promise<void>((done) => trap = { text, how, done }),
    cutAll: (how) => {
      for (const pair of [...open]) cut(pair, how);
    },
    setSilent: (value) => {
      isSilent = value;
    },
    get connections() {
      return count;
    },
    close: async () => {
      for (const { client, upstream } of open) {
        client.destroy();
        upstream?.destroy();
      }
      open.clear();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
