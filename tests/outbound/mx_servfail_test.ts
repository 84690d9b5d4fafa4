/**
 * Review wt16-r3: how resolveMx reads a DNS server's error answers. SERVFAIL (RCODE 2) and
 * REFUSED (RCODE 5) say nothing about the domain (a broken or lame authoritative server, a
 * DNSSEC failure, a resolver that is overloaded): RFC 5321 §5.1 and every MTA treat them as
 * temporary. Only NXDOMAIN, or an answer without records, may make the domain "no such domain",
 * which fails the recipients at once (550 5.1.2) and bounces the mail.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import dgram from "node:dgram";
import { resolveMx } from "../../src/outbound/mx.ts";

/**
 * A UDP DNS server answering every query with `rcode` and no records, but an A query with
 * `a` (when given) as its one record.
 */
async function failingServer(rcode: number, a4?: readonly number[]): Promise<dgram.Socket> {
  const s = dgram.createSocket("udp4");
  s.on("message", (q, rinfo) => {
    let qEnd = 12;
    while (q[qEnd] !== 0) qEnd += q[qEnd]! + 1;
    const qType = q.readUInt16BE(qEnd + 1);
    if (qType === 1 && a4 !== undefined) {
      const head = Buffer.from(q.subarray(0, qEnd + 5));
      head[2] = 0x80 | (q[2]! & 0x79);
      head[3] = 0x80;
      head.writeUInt16BE(1, 6);
      head.writeUInt16BE(0, 8);
      head.writeUInt16BE(0, 10);
      const answer = Buffer.from([0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ...a4]);
      s.send(Buffer.concat([head, answer]), rinfo.port, rinfo.address);
      return;
    }
    const a = Buffer.from(q);
    // QR=1, opcode and RD kept, RA=1, RCODE; counts: the question only.
    a[2] = 0x80 | (q[2]! & 0x79);
    a[3] = 0x80 | rcode;
    a.writeUInt16BE(0, 6);
    a.writeUInt16BE(0, 8);
    a.writeUInt16BE(0, 10);
    // Drop any OPT record (additional section) the query carried: the question ends at its QTYPE/QCLASS.
    let at = 12;
    while (q[at] !== 0) at += q[at]! + 1;
    s.send(a.subarray(0, at + 5), rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", () => resolve()));
  return s;
}

for (const [name, rcode] of [["SERVFAIL", 2], ["REFUSED", 5]] as const) {
  Deno.test(`resolveMx: a ${name} answer is a temporary failure, not "no such domain" (review wt16-r3)`, async () => {
    const s = await failingServer(rcode);
    try {
      const r = await resolveMx("example.test", {
        nameServer: { ipAddr: "127.0.0.1", port: s.address().port },
        timeoutMs: 2000,
      });
      assertEquals(
        r.kind,
        "temporary",
        `${name} made the mail fail for good: ${JSON.stringify(r)}`,
      );
    } finally {
      await new Promise<void>((resolve) => s.close(() => resolve()));
    }
  });
}

Deno.test("resolveMx: an MX query answered SERVFAIL does not send the mail to the domain's A record (review wt16-r3)", async () => {
  // The MX zone fails for a moment; the domain's web server address still resolves.
  const s = await failingServer(2, [127, 0, 0, 9]);
  try {
    const r = await resolveMx("example.test", {
      nameServer: { ipAddr: "127.0.0.1", port: s.address().port },
      timeoutMs: 2000,
    });
    assertEquals(r.kind, "temporary", `taken for "no MX": ${JSON.stringify(r)}`);
  } finally {
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }
});
