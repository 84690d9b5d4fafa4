/**
 * (#10 item 8) The metrics listener's bounds, over raw sockets: a silent or trickling client is
 * cut at the idle timeout, at most `maxConnections` are served at once (the next gets 503), and
 * the request head is capped (8 KiB: N answered, N+1 gets 431).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import net from "node:net";
import { METRICS_MAX_HEAD_BYTES, startMetricsServer } from "../../src/observe/http.ts";
import type { MetricsServer, MetricsServerOptions } from "../../src/observe/http.ts";

const exposition = { contentType: "text/plain; version=0.0.4", expose: () => Promise.resolve("") };

async function withMetrics(
  opts: Partial<MetricsServerOptions>,
  fn: (server: MetricsServer) => Promise<void>,
): Promise<void> {
  const server = await startMetricsServer({
    host: "127.0.0.1",
    port: 0,
    metrics: exposition,
    ...opts,
  });
  try {
    await fn(server);
  } finally {
    await server.close();
  }
}

/** A raw connection that records everything it receives and when the server closed it. */
class Raw {
  readonly socket: net.Socket;
  received = "";
  closedAt: number | undefined;
  readonly #closed: Promise<void>;

  constructor(port: number) {
    this.socket = net.connect({ host: "127.0.0.1", port });
    this.socket.on("data", (d: Uint8Array) => (this.received += new TextDecoder().decode(d)));
    this.socket.on("error", () => {});
    this.#closed = new Promise((resolve) =>
      this.socket.once("close", () => {
        this.closedAt = Date.now();
        resolve();
      })
    );
  }

  connected(): Promise<void> {
    return new Promise((resolve) => this.socket.once("connect", () => resolve()));
  }

  /** Waits for the close, at most `ms`; true when it came. */
  async closed(ms: number): Promise<boolean> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)));
    try {
      return await Promise.race([this.#closed.then(() => true as const), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  destroy(): void {
    this.socket.destroy();
  }
}

async function get(port: number, head = "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n") {
  const c = new Raw(port);
  try {
    await c.connected();
    c.socket.write(head);
    assert(await c.closed(5_000), "the server closes after the response");
    return c.received;
  } finally {
    c.destroy();
  }
}

Deno.test("(#10) metrics: a silent or trickling client is cut at the idle timeout, not before", async () => {
  await withMetrics({ idleTimeoutMs: 600 }, async (server) => {
    const silent = new Raw(server.port);
    const trickle = new Raw(server.port);
    try {
      await Promise.all([silent.connected(), trickle.connected()]);
      const started = Date.now();
      const line = "GET /healthz HTTP/1.1\r\nhost: x\r\n";
      let i = 0;
      const timer = setInterval(() => {
        if (i < line.length) trickle.socket.write(line[i++] as string);
      }, 40);
      try {
        // Before the deadline a whole request is still answered.
        await new Promise((r) => setTimeout(r, 200));
        assertEquals((await get(server.port)).split("\r\n")[0], "HTTP/1.1 200 OK");
        assert(await silent.closed(3_000), "the silent client is cut");
        assert(await trickle.closed(3_000), "the trickling client is cut");
      } finally {
        clearInterval(timer);
      }
      for (const c of [silent, trickle]) {
        const after = (c.closedAt ?? 0) - started;
        assert(after >= 500 && after < 2_500, `cut at the deadline: ${after} ms`);
      }
      assertEquals(silent.received, "");
    } finally {
      silent.destroy();
      trickle.destroy();
    }
  });
});

Deno.test("(#10) metrics: maxConnections are served at once, the next one gets 503", async () => {
  await withMetrics({ maxConnections: 2, idleTimeoutMs: 5_000 }, async (server) => {
    const held = [new Raw(server.port), new Raw(server.port)];
    try {
      await Promise.all(held.map((c) => c.connected()));
      // Let the server count both before the third arrives.
      await new Promise((r) => setTimeout(r, 100));
      const third = await get(server.port);
      assertEquals(third.split("\r\n")[0], "HTTP/1.1 503 Service Unavailable");
      held[0]!.destroy();
      // The slot comes back once the server saw the close (bounded wait, no fixed sleep).
      let status = "";
      for (let i = 0; i < 50 && status !== "HTTP/1.1 200 OK"; i++) {
        await new Promise((r) => setTimeout(r, 20));
        status = (await get(server.port)).split("\r\n")[0] ?? "";
      }
      assertEquals(status, "HTTP/1.1 200 OK");
    } finally {
      for (const c of held) c.destroy();
    }
  });
});

Deno.test("(#10) metrics: a request head of 8 KiB is answered, one octet more gets 431", async () => {
  await withMetrics({}, async (server) => {
    const headOf = (n: number) => {
      const start = "GET /healthz HTTP/1.1\r\nx-pad: ";
      return `${start}${"a".repeat(n - start.length)}\r\n\r\n`;
    };
    assertEquals(headOf(METRICS_MAX_HEAD_BYTES).length, METRICS_MAX_HEAD_BYTES + 4);
    const atN = await get(server.port, headOf(METRICS_MAX_HEAD_BYTES));
    assertEquals(atN.split("\r\n")[0], "HTTP/1.1 200 OK");
    const overN = await get(server.port, headOf(METRICS_MAX_HEAD_BYTES + 1));
    assertEquals(overN.split("\r\n")[0], "HTTP/1.1 431 Request Header Fields Too Large");
  });
});

/**
 * Sockets on the server's side of `port` (local port `port`) that a descriptor still holds: the
 * kernel's table gives a socket no descriptor holds inode 0. Not a count of all this process's
 * descriptors, which other test files running in parallel in the same process change.
 */
function serverSockets(port: number): number {
  const hexPort = port.toString(16).toUpperCase().padStart(4, "0");
  return Deno.readTextFileSync("/proc/self/net/tcp").split("\n").slice(1).filter((line) => {
    const cols = line.trim().split(/\s+/);
    return cols[1]?.endsWith(`:${hexPort}`) && cols[9] !== undefined && cols[9] !== "0";
  }).length;
}

/** Reads `conn` to its end (or reset): what the server sent before it closed its side. */
async function readToEnd(conn: Deno.TcpConn): Promise<string> {
  const chunks: string[] = [];
  const buf = new Uint8Array(1024);
  try {
    for (let i = 0; i < 100; i++) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(new TextDecoder().decode(buf.subarray(0, n)));
    }
  } catch (err) {
    if (!(err instanceof Deno.errors.ConnectionReset)) throw err;
  }
  return chunks.join("");
}

Deno.test("metrics: refused connections hold at most maxConnections descriptors, however many connect", async () => {
  await withMetrics({ maxConnections: 2, idleTimeoutMs: 30_000 }, async (server) => {
    const clients: Deno.TcpConn[] = [];
    try {
      // Two silent clients take both slots; 64 more are refused. None of them closes its side
      // (a flood that never reads or hangs up): each refused one's descriptor on the server
      // was kept for a second after its 503, so a fast enough flood held any number of them.
      for (let i = 0; i < 2; i++) {
        clients.push(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
      }
      const refused: Deno.TcpConn[] = [];
      for (let i = 0; i < 64; i++) {
        refused.push(await Deno.connect({ hostname: "127.0.0.1", port: server.port }));
      }
      clients.push(...refused);
      // Every refused one has had the server close its side (a 503 or at once).
      const answers = await Promise.all(refused.map(readToEnd));
      assertEquals(answers[0]?.split("\r\n")[0], "HTTP/1.1 503 Service Unavailable");
      const serverHeld = serverSockets(server.port);
      // The listener, 2 served, at most 2 refused ones reading their 503.
      assert(serverHeld <= 1 + 2 + 2, `the server holds ${serverHeld} sockets`);
    } finally {
      for (const c of clients) c.close();
    }
  });
});

Deno.test("metrics: a request head is found however it is cut into writes, CRLF CRLF split too", async (t) => {
  await withMetrics({}, async (server) => {
    const head = "GET /healthz HTTP/1.1\r\nhost: x\r\n\r\n";
    // Cut before each of the last five octets (inside CRLF CRLF), and one octet per write.
    for (const cut of [head.length - 5, head.length - 4, head.length - 3, head.length - 1, 1]) {
      await t.step(`writes of ${cut} octets`, async () => {
        const c = new Raw(server.port);
        try {
          await c.connected();
          for (let at = 0; at < head.length; at += cut) {
            await new Promise<void>((r) => c.socket.write(head.slice(at, at + cut), () => r()));
            // One write per segment: the server reads each on its own.
            await new Promise((r) => setTimeout(r, 5));
          }
          assert(await c.closed(5_000), "the server closes after the response");
          assertEquals(c.received.split("\r\n")[0], "HTTP/1.1 200 OK");
        } finally {
          c.destroy();
        }
      });
    }
    // The 8 KiB bound does not depend on the writes: its last octets one by one.
    const start = "GET /healthz HTTP/1.1\r\nx-pad: ";
    for (
      const [size, status] of [[METRICS_MAX_HEAD_BYTES, "200 OK"], [
        METRICS_MAX_HEAD_BYTES + 1,
        "431 Request Header Fields Too Large",
      ]] as const
    ) {
      const big = `${start}${"a".repeat(size - start.length)}\r\n\r\n`;
      const c = new Raw(server.port);
      try {
        await c.connected();
        c.socket.write(big.slice(0, size - 4));
        for (const ch of big.slice(size - 4)) {
          await new Promise<void>((r) => c.socket.write(ch, () => r()));
          await new Promise((r) => setTimeout(r, 5));
        }
        assert(await c.closed(5_000), "the server closes after the response");
        assertEquals(c.received.split("\r\n")[0], `HTTP/1.1 ${status}`);
      } finally {
        c.destroy();
      }
    }
    // A bare CR before the end does not hide it.
    const odd = await get(server.port, "GET /healthz HTTP/1.1\r\nx: a\r\r\n\r\n");
    assertEquals(odd.split("\r\n")[0], "HTTP/1.1 200 OK");
  });
});
