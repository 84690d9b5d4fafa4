/**
 * The world of mx_no_route_test.ts, run in a network namespace of its own that has only a
 * loopback interface (`unshare -n`): every IPv6 address but ::1 has no route, so a connect to one
 * fails at once with ENETUNREACH, as on a host without IPv6 routing. dnsmasq names `HOSTS`
 * (the first argument) dual-stack MX hosts for dual.test, each with one IPv4 address and `V6`
 * (the second argument, default 1) IPv6 ones, the last one the only one with an MTA (a capture
 * server on its IPv4 address, port 25; nothing else listens). Prints the outcome as one JSON
 * line.
 */
import { deliverToDomain } from "../../src/outbound/deliver.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { startDnsmasq } from "../_helpers/dnsmasq.ts";
import { deliveryOptions, outboundMessage } from "../_helpers/outbound_world.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";

/** MX hosts (the first argument), each with one IPv4 (127.0.0.1n) and V6 IPv6 addresses. */
const HOSTS = Number(Deno.args[0]);
const V6 = Number(Deno.args[1] ?? 1);

const names = Array.from({ length: HOSTS }, (_, i) => `mx${i}.dual.test`);
await using dns = await startDnsmasq({
  mx: names.map((host, i) => ({ name: "dual.test", host, preference: 10 * (i + 1) })),
  hosts: names.map((name, i) => ({
    name,
    addresses: [
      `127.0.0.${11 + i}`,
      ...Array.from({ length: V6 }, (_, j) => `2001:db8:${j + 1}::${i + 1}`),
    ],
  })),
});
const mta = await startCaptureServer({ host: `127.0.0.${10 + HOSTS}`, port: 25 });
const events: RecordedEvent[] = [];
try {
  const body = new TextEncoder().encode("Subject: x\r\n\r\nhello\r\n");
  const r = await deliverToDomain("dual.test", outboundMessage(["bob@dual.test"], body), {
    ...deliveryOptions(dns),
    log: recordingLogger(events),
  });
  // deno-lint-ignore no-console -- the parent test reads this line
  console.log(JSON.stringify({
    outcomes: r.recipients.map((x) => x.outcome),
    host: r.host,
    arrived: mta.messages.length,
    skipped: events.filter((e) => e.event === "outbound_host_skipped").map((e) => [
      e.fields.host,
      e.fields.reply,
    ]),
  }));
} finally {
  await mta.close();
}
