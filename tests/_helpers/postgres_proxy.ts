/**
 * A TCP proxy between a client and the test's PostgreSQL (127.0.0.1, port picked at run
 * time) that can lose a connection the ways a restart or a network loses it: a reset (RST)
 * or PostgreSQL's own FATAL 57P01 then a close, at the moment a chosen message goes by; or,
 * in `silent` mode, accept new connections and never answer them (as a server that stops
 * accepting mid-shutdown, or a dead route, looks to a client); or stall one established
 * connection at a chosen message: it stays open and nothing more goes either way.
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
  /**
   * Stalls the next connection whose client sends bytes containing `text`: those bytes still
   * reach the server, then nothing more is passed in either direction, while the connection
   * stays open (a server or route gone silent). postgres.js sends a statement's text in a
   * Parse the first time only, and runs it after the server's answer: the statement does not
   * run. Resolves when it did.
   */
  stallWhenSent(text: string): Promise<void>;
  /**
   * Stalls the next connection whose server answers with bytes containing `text` (e.g. the
   * `COMMIT` of a CommandComplete): the client never gets them, nor anything more.
   */
  stallWhenAnswered(text: string): Promise<void>;
  /**
   * Holds for `ms` the bytes of the next connection whose client sends `text` (a slow server
   * or route: its startup message carries the pool's application_name), then passes them and
   * all that follows on; resolves when it held them.
   */
  delayWhenSent(text: string, ms: number): Promise<void>;
  /** Cuts every open connection now. */
  cutAll(how: Cut): void;
  /**
   * Every open connection goes silent now and stays open (a NAT or firewall that dropped its
   * state, the far end's kernel still acknowledging); new connections pass through.
   */
  stallAll(): number;
  /** true: new connections are accepted and never answered; false: passed through again. */
  setSilent(isSilent: boolean): void;
  /** Connections opened so far. */
  readonly connections: number;
  /** Connections open now (a client's close ends its pair). */
  readonly openConnections: number;
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
  const open = new Set<{ client: net.Socket; upstream?: net.Socket; stall?: () => void }>();
  let isSilent = false;
  let count = 0;
  /** What to do to the next connection whose client (or server) sends `text`. */
  type Trap = {
    readonly text: string;
    readonly from: "client" | "server";
    readonly how: Cut | "stall" | { readonly delayMs: number };
    readonly done: () => void;
  };
  const traps: Trap[] = [];
  /** The trap `bytes` from `from` spring, taken off the list. */
  const sprung = (from: Trap["from"], bytes: Buffer): Trap | undefined => {
    const at = traps.findIndex((t) => t.from === from && bytes.includes(t.text));
    return at < 0 ? undefined : traps.splice(at, 1)[0];
  };
  const setTrap = (text: string, from: Trap["from"], how: Trap["how"]) =>
    new Promise<void>((done) => traps.push({ text, from, how, done }));

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
    let isStalled = false;
    const pair = { client, upstream, stall: () => isStalled = true };
    open.add(pair);
    upstream.on("error", () => {});
    let held: Buffer[] | undefined;
    client.on("data", (bytes: Buffer) => {
      if (isStalled) return;
      if (held !== undefined) return void held.push(bytes);
      const trap = sprung("client", bytes);
      if (typeof trap?.how === "object") {
        const later = held = [bytes];
        setTimeout(() => {
          held = undefined;
          if (!isStalled) { for (const b of later) upstream.write(b); }
        }, trap.how.delayMs);
      } else if (trap === undefined || trap.how === "stall") upstream.write(bytes);
      else cut(pair, trap.how);
      if (trap?.how === "stall") isStalled = true;
      trap?.done();
    });
    upstream.on("data", (bytes: Buffer) => {
      if (isStalled) return;
      const trap = sprung("server", bytes);
      if (trap === undefined) client.write(bytes);
      else isStalled = true;
      trap?.done();
    });
    // A stalled connection stays silent even when the server ends it.
    upstream.on("close", () => {
      if (!isStalled) client.destroy();
    });
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
    cutWhenSent: (text, how) => setTrap(text, "client", how),
    stallWhenSent: (text) => setTrap(text, "client", "stall"),
    stallWhenAnswered: (text) => setTrap(text, "server", "stall"),
    delayWhenSent: (text, ms) => setTrap(text, "client", { delayMs: ms }),
    cutAll: (how) => {
      for (const pair of [...open]) cut(pair, how);
    },
    stallAll: () => {
      let n = 0;
      for (const pair of open) if (pair.stall !== undefined) pair.stall(), n++;
      return n;
    },
    setSilent: (value) => {
      isSilent = value;
    },
    get connections() {
      return count;
    },
    get openConnections() {
      return open.size;
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
