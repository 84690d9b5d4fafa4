/**
 * Outbound STARTTLS: the receiving MX is the real `serve` with a certificate on 127.x.y.25:25
 * (its Received header then says ESMTPS); `outbound.tls: required` skips an MX that offers no
 * STARTTLS (the byte-exact capture server on 127.x.y.26:25; loopback(): this process's own addresses) with 4.7.10.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { deliverToDomain } from "../../src/outbound/deliver.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import {
  deliveryOptions,
  loopback,
  outboundMessage,
  startMxDns,
  tlsMxTest,
} from "../_helpers/outbound_world.ts";
import { addUser, removeTestFiles, runMain, startServer } from "../_helpers/server_process.ts";

const body = new TextEncoder().encode("From: a@example.org\r\nSubject: tls\r\n\r\nhello\r\n");

const message = (to: string) => outboundMessage([to], body, "a@example.org");

await tlsMxTest("deliverToDomain: STARTTLS when offered, required TLS skips a plain MX", {
  label: "deliverToDomain TLS",
  where: "127.x.y.25",
}, async (t, ca) => {
  await using dns = await startMxDns({ "tls.test": loopback(25), "plain.test": loopback(26) });
  const mx = await startServer({
    config: {
      tls: { cert: ca.certPath, key: ca.keyPath },
      smtp: { listen: [`${loopback(25)}:25`] },
    },
  });
  const plain = await startCaptureServer({ host: loopback(26), port: 25 });
  const opts = deliveryOptions(dns);
  try {
    await addUser(mx.configPath, "bob", ["tls.test"]);
    await t.step("opportunistic: STARTTLS, EHLO again, delivered; the MX saw ESMTPS", async () => {
      const r = await deliverToDomain("tls.test", message("bob@tls.test"), opts);
      assertEquals(r.recipients.map((x) => x.outcome), ["delivered"], JSON.stringify(r));
      const list = await runMain(["queue", "list", "--json", "--config", mx.configPath]);
      const [queued] = JSON.parse(list.stdout) as { id: string }[];
      assert(queued !== undefined, list.stdout + list.stderr);
      const shown = await runMain(["queue", "show", queued.id, "--config", mx.configPath]);
      match(shown.stdout, /with ESMTPS/);
    });
    await t.step("required: the same MX with TLS is fine", async () => {
      const r = await deliverToDomain("tls.test", message("bob@tls.test"), {
        ...opts,
        tls: "required",
      });
      assertEquals(r.recipients.map((x) => x.outcome), ["delivered"]);
    });
    await t.step("required: an MX without STARTTLS gets nothing; deferred 4.7.10", async () => {
      const r = await deliverToDomain("plain.test", message("x@plain.test"), {
        ...opts,
        tls: "required",
      });
      assertEquals(r.recipients.map((x) => [x.outcome, x.reply.enhanced]), [[
        "deferred",
        "4.7.10",
      ]]);
      assertEquals(plain.messages.length, 0);
      assert(!plain.commands.some((c) => c.startsWith("MAIL")), plain.commands.join("|"));
    });
    await t.step("opportunistic: the same plain MX takes the mail without TLS", async () => {
      const r = await deliverToDomain("plain.test", message("x@plain.test"), opts);
      assertEquals(r.recipients.map((x) => x.outcome), ["delivered"]);
      assertEquals(plain.messages.length, 1);
    });
  } finally {
    await plain.close();
    await mx.stop();
    await removeTestFiles(mx);
  }
});
