/**
 * How many MX addresses one delivery attempt tries: every address of up to 20 MX hosts was
 * tried in turn, each with up to 30 s to connect and 5 minutes for its greeting and again for
 * EHLO, so a domain whose MX hosts are dead or tarpits (its owner's choice, or a forged sender
 * a bounce goes to) held one of the `outbound.concurrency` slots for hours per attempt. Now
 * at most 5 addresses are tried per attempt, as Postfix's smtp_mx_address_limit; the rest waits
 * for the retry. Here 12 MX hosts on loopback addresses where nothing listens (127.x.y.100-111,
 * loopback(): this process's own addresses), found through dnsmasq: each is refused at once.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { deliverToDomain } from "../../src/outbound/deliver.ts";
import { deliveryOptions, loopback, outboundMessage } from "../_helpers/outbound_world.ts";
import { startDnsmasq } from "../_helpers/dnsmasq.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";
import { toolTest } from "../_helpers/tools.ts";

const HOSTS = 12;

await toolTest(
  "deliverToDomain tries at most 5 MX addresses per attempt",
  ["dnsmasq"],
  async () => {
    const names = Array.from({ length: HOSTS }, (_, i) => `mx${i}.dead.test`);
    await using dns = await startDnsmasq({
      mx: names.map((host, i) => ({ name: "dead.test", host, preference: 10 * (i + 1) })),
      hosts: names.map((name, i) => ({ name, addresses: [loopback(100 + i)] })),
    });
    const events: RecordedEvent[] = [];
    const body = new TextEncoder().encode("Subject: x\r\n\r\nhello\r\n");
    const r = await deliverToDomain("dead.test", outboundMessage(["bob@dead.test"], body), {
      ...deliveryOptions(dns),
      log: recordingLogger(events),
    });
    assertEquals(r.recipients.map((x) => [x.outcome, x.reply.code]), [["deferred", 451]]);
    const tried = events.filter((e) => e.event === "outbound_host_skipped").map((e) =>
      e.fields.host
    );
    // The most preferred first, in MX order.
    assertEquals(tried, names.slice(0, 5).map((n, i) => `${n}[${loopback(100 + i)}]`));
  },
);
