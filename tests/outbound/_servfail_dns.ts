/**
 * A UDP DNS server on 127.0.0.1 that answers every query SERVFAIL (a broken upstream), for the
 * outbound tests' dnsmasq to forward a zone to (`DnsRecords.forward`). Close it when done.
 */
import dgram from "node:dgram";

export async function servfailServer(): Promise<dgram.Socket> {
  const s = dgram.createSocket("udp4");
  s.on("message", (q, rinfo) => {
    let at = 12;
    while (at < q.length && q[at] !== 0) at += q[at]! + 1;
    const a = Buffer.from(q.subarray(0, at + 5));
    a[2] = 0x80 | (q[2]! & 0x79);
    a[3] = 0x82; // RA, RCODE 2
    a.writeUInt16BE(0, 6);
    a.writeUInt16BE(0, 8);
    a.writeUInt16BE(0, 10);
    s.send(a, rinfo.port, rinfo.address);
  });
  await new Promise<void>((resolve) => s.bind(0, "127.0.0.1", () => resolve()));
  return s;
}
