import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { ConnectionLimiter } from "../../src/cli/_serve_limits.ts";
import { SessionSet } from "../../src/cli/_serve_sessions.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { connPair } from "../_helpers/conn_pair.ts";

Deno.test("ConnectionLimiter admits max_connections_per_ip from one address, not one more", () => {
  const limiter = new ConnectionLimiter({ maxTotal: 10, maxPerIp: 2 });
  assertEquals(limiter.tryAcquire("192.0.2.1"), { ok: true });
  assertEquals(limiter.tryAcquire("192.0.2.1"), { ok: true });
  assertEquals(limiter.tryAcquire("192.0.2.1"), { ok: false, refusal: "perIp" });
  assertEquals(limiter.tryAcquire("192.0.2.2"), { ok: true }, "other addresses still come in");
  limiter.release("192.0.2.1");
  assertEquals(limiter.tryAcquire("192.0.2.1"), { ok: true }, "a released slot is free again");
});

Deno.test("ConnectionLimiter admits max_connections in total, not one more", () => {
  const limiter = new ConnectionLimiter({ maxTotal: 3, maxPerIp: 3 });
  for (const ip of ["192.0.2.1", "192.0.2.2", "192.0.2.3"]) {
    assertEquals(limiter.tryAcquire(ip), { ok: true });
  }
  assertEquals(limiter.tryAcquire("192.0.2.4"), { ok: false, refusal: "total" });
  assertEquals(limiter.total, 3);
  limiter.release("192.0.2.2");
  assertEquals(limiter.tryAcquire("192.0.2.4"), { ok: true });
});

Deno.test("ConnectionLimiter.release() without an acquire is a bug and throws", () => {
  const limiter = new ConnectionLimiter({ maxTotal: 1, maxPerIp: 1 });
  throws(() => limiter.release("192.0.2.9"));
});

Deno.test("SessionSet.drain() waits for sessions that end within the grace", async () => {
  const set = new SessionSet(NULL_LOGGER);
  const { server, client } = connPair();
  let done = false;
  set.add(server, async () => {
    await new Promise((r) => setTimeout(r, 20));
    done = true;
  });
  assertEquals(await set.drain(5_000), 0);
  assertEquals(done, true);
  assertEquals(set.size, 0);
  client.destroy();
  server.destroy();
});

Deno.test("SessionSet.drain() cuts sessions still running after the grace", async () => {
  const set = new SessionSet(NULL_LOGGER);
  const { server, client } = connPair();
  // The session waits for bytes that never come; destroying its Conn ends the read.
  set.add(server, async () => {
    await server.read(60_000).catch(() => null);
  });
  assertEquals(await set.drain(50), 1);
  assertEquals(set.size, 0);
  client.destroy();
});
