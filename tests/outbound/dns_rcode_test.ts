/**
 * src/outbound/dns_rcode.ts: the second query that tells NXDOMAIN and NODATA (facts about the
 * name) from SERVFAIL, REFUSED and silence (the server's trouble), and the bounds on what it
 * takes as the answer. Every server here is a UDP socket of the test's own on 127.0.0.1.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import dgram from "node:dgram";
import {
  encodeName,
  MAX_ANSWER_OCTETS,
  nameServers,
  queryRcode,
  rcodeServers,
  readAnswer,
} from "../../src/outbound/dns_rcode.ts";

type Reply = (q: Buffer) => readonly Buffer[];

/** The end of the question (after QTYPE and QCLASS) in query `q`. */
function questionEnd(q: Buffer): number {
  let at = 12;
  while (q[at] !== 0) at += q[at]! + 1;
  return at + 5;
}

/** An answer to `q`: its header and question, `rcode`, the `answers` records appended. */
function answer(q: Buffer, rcode: number, answers: readonly Buffer[] = [], flags = 0): Buffer {
  const head = Buffer.from(q.subarray(0, questionEnd(q)));
  head[2] = 0x80 | (q[2]! & 0x79) | flags;
  head[3] = 0x80 | rcode;
  head.writeUInt16BE(answers.length, 6);
  head.writeUInt16BE(0, 8);
  head.writeUInt16BE(0, 10);
  return Buffer.concat([head, ...answers]);
}

/** A record owned by the question's name (pointer to offset 12) of `type` with `rdata`. */
function record(type: number, rdata: readonly number[]): Buffer {
  const r = Buffer.alloc(12 + rdata.length);
  r.writeUInt16BE(0xc00c, 0);
  r.writeUInt16BE(type, 2);
  r.writeUInt16BE(1, 4);
  r.writeUInt32BE(60, 6);
  r.writeUInt16BE(rdata.length, 10);
  Buffer.from(rdata).copy(r, 12);
  return r;
}

/** A UDP server on 127.0.0.1 sending what `reply` returns for each query it gets. */
async function server(
  reply: Reply,
): Promise<{ port: number; queries: Buffer[] } & AsyncDisposable> {
  const s = dgram.createSocket("udp4");
  const queries: Buffer[] = [];
  s.on("message", (q, rinfo) => {
    queries.push(q);
    for (const a of reply(q)) s.send(a, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", () => resolve()));
  return {
    port: s.address().port,
    queries,
    [Symbol.asyncDispose]: () => new Promise<void>((resolve) => s.close(() => resolve())),
  };
}

async function ask(reply: Reply, name = "Example.TEST", type: "MX" | "A" = "MX") {
  await using s = await server(reply);
  const verdict = await queryRcode(name, type, { ipAddr: "127.0.0.1", port: s.port }, 2000);
  return { verdict, queries: s.queries };
}

Deno.test("queryRcode: NXDOMAIN is no such name, NOERROR without records is no records", async () => {
  assertEquals((await ask((q) => [answer(q, 3)])).verdict, { kind: "no_such_name" });
  assertEquals((await ask((q) => [answer(q, 0)])).verdict, { kind: "no_records" });
  // A CNAME alone (the alias's target has no such records) is no records too.
  const cname = record(5, [1, 0x78, 0xc0, 0x0c]);
  assertEquals((await ask((q) => [answer(q, 0, [cname])])).verdict, { kind: "no_records" });
  // NXDOMAIN behind a CNAME (RFC 6604) is still no such name.
  assertEquals((await ask((q) => [answer(q, 3, [cname])])).verdict, { kind: "no_such_name" });
});

Deno.test("queryRcode: the query asks the same name and type, recursion desired", async () => {
  const { queries } = await ask((q) => [answer(q, 0)], "mx.Example.test", "A");
  assertEquals(queries.length, 1);
  const q = queries[0]!;
  assertEquals(q.readUInt16BE(2), 0x0100);
  assertEquals(q.readUInt16BE(4), 1);
  assertEquals([...q.subarray(12, questionEnd(q))], [
    ...[2, ..."mx"].map((c) => typeof c === "number" ? c : c.charCodeAt(0)),
    ...[7, ..."Example"].map((c) => typeof c === "number" ? c : c.charCodeAt(0)),
    ...[4, ..."test"].map((c) => typeof c === "number" ? c : c.charCodeAt(0)),
    0,
    0,
    1,
    0,
    1,
  ]);
});

for (
  const [name, rcode] of [["FORMERR", 1], ["SERVFAIL", 2], ["NOTIMP", 4], ["REFUSED", 5]] as const
) {
  Deno.test(`queryRcode: ${name} says nothing about the name`, async () => {
    const { verdict } = await ask((q) => [answer(q, rcode)]);
    assertEquals(verdict, { kind: "unknown", detail: `answer ${name}` });
  });
}

Deno.test("queryRcode: records of the type on the second query, a truncated or malformed answer are unknown", async () => {
  const mx = record(15, [0, 10, 0]);
  const cases: [Reply, string][] = [
    [(q) => [answer(q, 0, [mx])], "records found on the second query"],
    [(q) => [answer(q, 0, [], 0x02)], "answer truncated (TC)"],
    // ANCOUNT 1, but the record ends inside its fixed fields.
    [(q) => [answer(q, 0, [mx]).subarray(0, questionEnd(q) + 6)], "answer malformed"],
    // RDLENGTH past the end of the datagram.
    [
      (q) => [answer(q, 0, [record(15, [0, 10, 0])]).subarray(0, questionEnd(q) + 13)],
      "answer malformed",
    ],
  ];
  for (const [reply, detail] of cases) {
    assertEquals((await ask(reply)).verdict, { kind: "unknown", detail });
  }
});

Deno.test("queryRcode: answers with another ID, another question, a bad header or over 512 octets are ignored", async () => {
  const wrongId = (q: Buffer) => {
    const a = answer(q, 3);
    a.writeUInt16BE(q.readUInt16BE(0) ^ 1, 0);
    return a;
  };
  const otherName = (q: Buffer) => {
    const a = answer(q, 3);
    a[13] = 0x7a; // first letter of the name changed
    return a;
  };
  const otherType = (q: Buffer) => {
    const a = answer(q, 3);
    a.writeUInt16BE(1, questionEnd(q) - 4);
    return a;
  };
  const notResponse = (q: Buffer) => {
    const a = answer(q, 3);
    a[2] = a[2]! & 0x7f;
    return a;
  };
  const huge = (q: Buffer) => {
    const a = answer(q, 3, [record(16, new Array(MAX_ANSWER_OCTETS).fill(0x41))]);
    a.writeUInt16BE(0, 6); // the size alone must make it ignored
    return a;
  };
  // Each forged answer says NXDOMAIN; the real one after it says NOERROR.
  for (const forged of [wrongId, otherName, otherType, notResponse, huge]) {
    const { verdict } = await ask((q) => [forged(q), answer(q, 0)]);
    assertEquals(verdict, { kind: "no_records" }, forged.name);
  }
});

Deno.test("queryRcode: after 32 datagrams that are not the answer it stops listening", async () => {
  const junk = (q: Buffer) => Array.from({ length: 32 }, () => Buffer.from(q)); // QR=0: queries
  const { verdict } = await ask((q) => [...junk(q), answer(q, 3)]);
  assert(verdict.kind === "unknown" && verdict.detail.startsWith("no readable answer from"));
});

Deno.test("queryRcode: an answer from another address or port than the server's is ignored", async () => {
  const forger = dgram.createSocket("udp4");
  await new Promise<void>((resolve) => forger.bind(0, "127.0.0.1", () => resolve()));
  const s = dgram.createSocket("udp4");
  let isServerSilent = true;
  // The forger learns each query (ID, port and all) and answers it first, NXDOMAIN.
  s.on("message", (q, rinfo) => {
    forger.send(answer(q, 3), rinfo.port, rinfo.address);
    if (!isServerSilent) s.send(answer(q, 0), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", () => resolve()));
  try {
    const where = { ipAddr: "127.0.0.1", port: s.address().port };
    assertEquals(await queryRcode("example.test", "MX", where, 300), {
      kind: "unknown",
      detail: `no answer from 127.0.0.1:${where.port} in 300 ms`,
    });
    isServerSilent = false;
    assertEquals(await queryRcode("example.test", "MX", where, 2000), { kind: "no_records" });
  } finally {
    await new Promise<void>((resolve) => s.close(() => resolve()));
    await new Promise<void>((resolve) => forger.close(() => resolve()));
  }
});

Deno.test("queryRcode: a server that never answers is unknown once the deadline passes", async () => {
  await using s = await server(() => []);
  const v = await queryRcode("example.test", "MX", { ipAddr: "127.0.0.1", port: s.port }, 300);
  assertEquals(v, { kind: "unknown", detail: `no answer from 127.0.0.1:${s.port} in 300 ms` });
  // The query was sent again once, halfway (a lost datagram is not a verdict); the second may
  // still be on its way when the deadline's timer runs first on a busy machine.
  for (let i = 0; i < 400 && s.queries.length < 2; i++) await new Promise((r) => setTimeout(r, 5));
  assertEquals(s.queries.length, 2);
  assertEquals(s.queries[0], s.queries[1]);
});

Deno.test("queryRcode: a query that cannot be sent is unknown, never thrown", async () => {
  // Port 0 makes the send throw at once; the resend halfway would throw from a timer.
  const v = await queryRcode("example.test", "MX", { ipAddr: "127.0.0.1", port: 0 }, 300);
  assert(v.kind === "unknown" && v.detail.startsWith("query to 127.0.0.1:0: "), JSON.stringify(v));
});

Deno.test("readAnswer: shorter than a header or without our question is not an answer", () => {
  const qname = encodeName("a.test") as Uint8Array;
  assertEquals(readAnswer(new Uint8Array(11), 0, qname, 15), undefined);
  const header = new Uint8Array(12);
  header[2] = 0x80;
  header[5] = 1; // QDCOUNT 1, but no question follows
  assertEquals(readAnswer(header, 0, qname, 15), undefined);
});

Deno.test("encodeName: labels of 1-63 octets, names of at most 255", () => {
  assertEquals([...encodeName("a.b.") as Uint8Array], [1, 97, 1, 98, 0]);
  assertEquals(typeof encodeName("a..b"), "string");
  assertEquals(typeof encodeName(`${"x".repeat(64)}.test`), "string");
  assert(encodeName(`${"x".repeat(63)}.test`) instanceof Uint8Array);
  const long = Array.from({ length: 5 }, () => "x".repeat(50)).join("."); // 5 × 51 + 1 = 256
  assertEquals(typeof encodeName(long), "string");
  assert(encodeName(long.slice(2)) instanceof Uint8Array);
});

Deno.test("nameServers: the first 3 nameserver lines with an address (resolv.conf MAXNS)", () => {
  const text = [
    "# nameserver 192.0.2.99",
    "search example.net",
    "nameserver not-an-address",
    "  nameserver   127.0.0.53  # systemd-resolved",
    "nameserver 192.0.2.1",
    "nameserver 2001:db8::1",
    "nameserver 192.0.2.4",
  ].join("\n");
  assertEquals(nameServers(text), ["127.0.0.53", "192.0.2.1", "2001:db8::1"]);
  assertEquals(nameServers("nameserver 2001:db8::1\n"), ["2001:db8::1"]);
  assertEquals(nameServers("options edns0\n"), []);
});

Deno.test("rcodeServers: outbound.resolver alone, else resolv.conf's (read at most 64 KiB)", async () => {
  const configured = { ipAddr: "127.0.0.1", port: 5353 };
  assertEquals(await rcodeServers(configured, "/nonexistent"), [configured]);
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/resolv.conf`;
    await Deno.writeTextFile(path, "search x\nnameserver 192.0.2.7\nnameserver ::1\n");
    assertEquals(await rcodeServers(undefined, path), [
      { ipAddr: "192.0.2.7", port: 53 },
      { ipAddr: "::1", port: 53 },
    ]);
    // A line past the first 64 KiB is never read.
    await Deno.writeTextFile(path, `${"#".repeat(64 * 1024)}\nnameserver 192.0.2.8\n`);
    assertEquals(await rcodeServers(undefined, path), `no nameserver in ${path}`);
    const missing = await rcodeServers(undefined, `${dir}/missing`);
    assert(typeof missing === "string" && missing.startsWith(`cannot read ${dir}/missing`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
