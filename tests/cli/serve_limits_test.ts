import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { ConnectionLimiter } from "../../src/cli/_serve_limits.ts";
import type { Admission, AdmissionTicket } from "../../src/cli/_serve_limits.ts";
import { SessionSet } from "../../src/cli/_serve_sessions.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { connPair } from "../_helpers/conn_pair.ts";

const ok = (a: Admission): AdmissionTicket => {
  if (!a.ok) throw new Error(`refused: ${a.refusal}`);
  return a.ticket;
};
const refusal = (a: Admission) => a.ok ? "admitted" : a.refusal;

Deno.test("ConnectionLimiter admits max_connections_per_ip from one address, not one more", () => {
  const limiter = new ConnectionLimiter({ maxTotal: 10, maxPerIp: 2 });
  const first = ok(limiter.tryAcquire("192.0.2.1"));
  ok(limiter.tryAcquire("192.0.2.1"));
  assertEquals(refusal(limiter.tryAcquire("192.0.2.1")), "perIp");
  ok(limiter.tryAcquire("192.0.2.2")); // other addresses still come in
  first.release();
  first.release(); // idempotent: frees one slot only
  ok(limiter.tryAcquire("192.0.2.1")); // a released slot is free again
  assertEquals(refusal(limiter.tryAcquire("192.0.2.1")), "perIp");
});

Deno.test("ConnectionLimiter admits max_connections in total, not one more", () => {
  const limiter = new ConnectionLimiter({ maxTotal: 3, maxPerIp: 3 });
  const tickets = ["192.0.2.1", "192.0.2.2", "192.0.2.3"].map((ip) => ok(limiter.tryAcquire(ip)));
  assertEquals(refusal(limiter.tryAcquire("192.0.2.4")), "total");
  assertEquals(limiter.total, 3);
  tickets[1]!.release();
  ok(limiter.tryAcquire("192.0.2.4"));
});

Deno.test("(#10) ConnectionLimiter with eviction: a newcomer takes the slot of an unauthenticated one", () => {
  const limiter = new ConnectionLimiter({ maxTotal: 3, maxPerIp: 2, evictUnauthenticated: true });
  const evicted: string[] = [];
  const take = (ip: string, name: string) => limiter.tryAcquire(ip, () => evicted.push(name));
  const a1 = ok(take("192.0.2.1", "a1"));
  ok(take("192.0.2.2", "b1"));
  ok(take("192.0.2.1", "a2"));
  // Full: the busiest address (192.0.2.1) loses its oldest unauthenticated connection.
  ok(take("192.0.2.3", "c1"));
  assertEquals(evicted, ["a1"]);
  assertEquals(limiter.total, 3);
  a1.release(); // the evicted handler's own release frees nothing more
  assertEquals(limiter.total, 3);
  // Tie (one each): the oldest goes.
  ok(take("192.0.2.4", "d1"));
  assertEquals(evicted, ["a1", "b1"]);
});

Deno.test("(#10) ConnectionLimiter with eviction never evicts an authenticated connection", () => {
  const limiter = new ConnectionLimiter({ maxTotal: 2, maxPerIp: 2, evictUnauthenticated: true });
  const evicted: string[] = [];
  const take = (ip: string, name: string) => limiter.tryAcquire(ip, () => evicted.push(name));
  ok(take("192.0.2.1", "a")).markAuthenticated();
  const b = ok(take("192.0.2.2", "b"));
  ok(take("192.0.2.3", "c")).markAuthenticated(); // evicts b, the only unauthenticated one
  assertEquals(evicted, ["b"]);
  b.release();
  assertEquals(refusal(take("192.0.2.4", "d")), "total");
  assertEquals(evicted, ["b"]);
});

Deno.test("(#10) ConnectionLimiter without eviction (the MX) refuses the newcomer", () => {
  const limiter = new ConnectionLimiter({ maxTotal: 1, maxPerIp: 1 });
  const evicted: string[] = [];
  ok(limiter.tryAcquire("192.0.2.1", () => evicted.push("a")));
  assertEquals(refusal(limiter.tryAcquire("192.0.2.2", () => evicted.push("b"))), "total");
  assertEquals(evicted, []);
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
