/**
 * Review wt16-r3: RFC 5321 §5.1: an SMTP client that finds its own host among a domain's MX
 * hosts MUST discard it and every host of its preference or lower, so that it never sends the
 * mail to itself. deliverBatch tries every MX host in order, ours included. A domain that lists
 * this relay as a backup MX (preference 20) without being hosted here: while its primary
 * (preference 10) is down, the mail goes to ourselves, our inbound refuses to relay it
 * (550 5.7.1), and the recipient fails for good and is bounced; it should stay deferred until
 * the primary is back.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { deliverToDomain } from "../../src/outbound/deliver.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import {
  deliveryOptions,
  loopback,
  outboundMessage,
  startMxDns,
} from "../_helpers/outbound_world.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";

await toolTest(
  "deliverToDomain: our own host in a domain's MX list is not tried, nor any host after it (review wt16-r3)",
  ["dnsmasq"],
  async () => {
    if (!canBindPort25("mx_self", "127.x.y.71")) return;
    const ours = "relay.example.net"; // deliveryOptions' helo: this relay's name
    await using dns = await startMxDns({}, {
      mx: [
        { name: "backup.test", host: "primary.backup.test", preference: 10 },
        { name: "backup.test", host: ours, preference: 20 },
      ],
      // Nothing listens on the primary's address (down for maintenance).
      hosts: [
        { name: "primary.backup.test", addresses: [loopback(72)] },
        { name: ours, addresses: [loopback(71)] },
      ],
    });
    // Our own inbound: backup.test is not one of our domains.
    const self = await startCaptureServer({
      host: loopback(71),
      port: 25,
      rcptReply: () => "550 5.7.1 Relaying denied",
    });
    try {
      const r = await deliverToDomain(
        "backup.test",
        outboundMessage(["x@backup.test"], new TextEncoder().encode("Subject: s\r\n\r\nb\r\n")),
        deliveryOptions(dns),
      );
      assertEquals(
        r.recipients.map((x) => x.outcome),
        ["deferred"],
        `sent to ourselves: ${JSON.stringify(r)}`,
      );
    } finally {
      await self.close();
    }
  },
);
