/**
 * The dnsmasq helper (tests/_helpers/dnsmasq.ts) under a port clash: a spare UDP port picked by
 * one test can be taken by another program (another test's dnsmasq, a resolver's query socket)
 * before dnsmasq binds it. dnsmasq then exits, and the helper must not hand back a server
 * whose DNS answers come from that other program (an NXDOMAIN from anyone is not "ready"):
 * the test would resolve against the wrong records.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { Buffer } from "node:buffer";
import dgram from "node:dgram";
import { type DnsServer, startDnsmasq } from "../_helpers/dnsmasq.ts";
import { toolTest } from "../_helpers/tools.ts";

/** A UDP DNS server on a spare port that answers NXDOMAIN to every query. */
async function startNxdomainServer(): Promise<{ port: number; close(): Promise<void> }> {
  const sock = dgram.createSocket("udp4");
  sock.on("message", (msg, from) => {
    if (msg.length < 12) return;
    const reply = Buffer.from(msg);
    reply[2] = 0x80 | ((msg[2] ?? 0) & 0x01); // QR, keep RD
    reply[3] = 0x83; // RA, RCODE 3 (NXDOMAIN)
    sock.send(reply, from.port, from.address);
  });
  await new Promise<void>((resolve, reject) => {
    sock.once("error", reject);
    sock.bind(0, "127.0.0.1", () => resolve());
  });
  return {
    port: sock.address().port,
    close: () => new Promise<void>((resolve) => sock.close(() => resolve())),
  };
}

await toolTest("startDnsmasq refuses a port another DNS server answers on", [
  "dnsmasq",
], async () => {
  const other = await startNxdomainServer();
  try {
    let started: DnsServer | undefined;
    let error: unknown;
    try {
      started = await startDnsmasq({ hosts: [{ name: "mine.test", addresses: ["127.0.0.9"] }] }, {
        port: other.port,
      });
    } catch (err) {
      error = err;
    }
    await started?.stop();
    assert(started === undefined, "a dnsmasq was handed back on a port another server holds");
    assert(String(error).includes("did not get ready"), String(error));
    assert(String(error).includes(`port ${other.port}`), String(error));
  } finally {
    await other.close();
  }
});

await toolTest("startDnsmasq on a spare port serves its records once handed back", [
  "dnsmasq",
], async () => {
  await using dns = await startDnsmasq({
    hosts: [{ name: "mine.test", addresses: ["127.0.0.9"] }],
  });
  const got = await Deno.resolveDns("mine.test", "A", {
    nameServer: { ipAddr: dns.ipAddr, port: dns.port },
  });
  assertEquals(got, ["127.0.0.9"]);
});
