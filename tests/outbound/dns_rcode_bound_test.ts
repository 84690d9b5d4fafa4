/**
 * The second query after a NotFound (src/outbound/dns_rcode.ts) within one small bound: a server
 * that answered Deno's lookup and then stays silent cost the whole query deadline (10 s) per
 * second query, one after the other within a lookup (MX, then A and AAAA of the implicit MX);
 * and of resolv.conf's name servers only the first was asked, so a silent first one decided even
 * when the next would have answered. Every server here is a UDP socket of the test's own on
 * 127.0.0.1; the system resolver is never asked.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import dgram from "node:dgram";
import { queryRcode } from "../../src/outbound/dns_rcode.ts";
import { resolveMx } from "../../src/outbound/mx.ts";

/** The end of the question (after QTYPE and QCLASS) of query `q`, and its QTYPE. */
function question(q: Buffer): { end: number; type: number } {
  let at = 12;
  while (q[at] !== 0) at += q[at]! + 1;
  return { end: at + 5, type: q.readUInt16BE(at + 1) };
}

/** An answer to `q` with `rcode` and no records. */
function empty(q: Buffer, rcode: number): Buffer {
  const a = Buffer.from(q.subarray(0, question(q).end));
  a[2] = 0x80 | (q[2]! & 0x79);
  a[3] = 0x80 | rcode;
  a.writeUInt16BE(0, 6);
  a.writeUInt16BE(0, 8);
  a.writeUInt16BE(0, 10);
  return a;
}

/** A UDP server on 127.0.0.1 sending what `reply` returns (nothing: silent) for each query. */
async function server(
  reply: (q: Buffer, seen: number) => Buffer | undefined,
): Promise<{ port: number } & AsyncDisposable> {
  const s = dgram.createSocket("udp4");
  const seen = new Map<string, number>();
  s.on("message", (q, rinfo) => {
    const { end } = question(q);
    const key = q.subarray(12, end).toString("hex").toLowerCase();
    const n = (seen.get(key) ?? 0) + 1;
    seen.set(key, n);
    const a = reply(q, n);
    if (a !== undefined) s.send(a, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", () => resolve()));
  return {
    port: s.address().port,
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => s.close(() => resolve())),
  };
}

Deno.test("resolveMx: second queries to a server gone silent end within one bound per lookup", async () => {
  // No MX (asked twice, answered twice); the implicit MX's A and AAAA are answered "none" to
  // Deno's lookup, then never again: both second queries go unanswered.
  await using s = await server((q, seen) => {
    const { type } = question(q);
    return type === 15 || seen === 1 ? empty(q, 0) : undefined;
  });
  const started = Date.now();
  const r = await resolveMx("quiet.test", { nameServer: { ipAddr: "127.0.0.1", port: s.port } });
  const tookMs = Date.now() - started;
  assert(r.kind === "temporary" && r.reason === "dns_error", JSON.stringify(r));
  // The bound is 3 s (README "Where it goes"); the query deadline alone was 10 s.
  assert(tookMs < 8_000, `the lookup took ${tookMs} ms`);
});

Deno.test("queryRcode: a silent first name server does not decide while the next one answers", async () => {
  await using silent = await server(() => undefined);
  await using answering = await server((q) => empty(q, 3));
  const servers = [
    { ipAddr: "127.0.0.1", port: silent.port },
    { ipAddr: "127.0.0.1", port: answering.port },
  ];
  assertEquals(await queryRcode("gone.test", "MX", servers, 2000), { kind: "no_such_name" });
  // Both silent: unknown once the one deadline passed, naming each.
  await using alsoSilent = await server(() => undefined);
  const v = await queryRcode("gone.test", "MX", [servers[0]!, {
    ipAddr: "127.0.0.1",
    port: alsoSilent.port,
  }], 300);
  assertEquals(v, {
    kind: "unknown",
    detail: `no answer from 127.0.0.1:${silent.port} in 300 ms; ` +
      `no answer from 127.0.0.1:${alsoSilent.port} in 300 ms`,
  });
});
