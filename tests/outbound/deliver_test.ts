/**
 * Outbound delivery with real parts: dnsmasq answers the MX lookups, the receiving MTA is a
 * byte-exact capture server on 127.x.y.21:25 (loopback(): this process's own addresses) (port 25, as a deployment uses; tests run as root),
 * and python3-dkim checks the signature the message arrived with.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { deliverToDomain } from "../../src/outbound/deliver.ts";
import { signOutbound } from "../../src/outbound/sign.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { verifyDkim } from "../_helpers/dkim.ts";
import {
  deliveryOptions,
  exampleOrgKey,
  loopback,
  outboundMessage,
  startMxDns,
} from "../_helpers/outbound_world.ts";
import { SmtpSink } from "../_helpers/smtp_sink.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";

const enc = (s: string) => new TextEncoder().encode(s);

const message = (to: readonly string[], body: Uint8Array) => outboundMessage(to, body);

await toolTest(
  "deliverToDomain: MX lookup, a dead MX skipped, DKIM-signed delivery to port 25",
  ["dnsmasq", "dkimverify", "smtp-sink"],
  async (t) => {
    if (!canBindPort25("deliverToDomain", "127.x.y.21")) return;
    await withTempDataDir(async (dir) => {
      const { keys, txt } = await exampleOrgKey(dir, "out");
      await using dns = await startMxDns(
        { "dest.test": loopback(21), "postfix.test": loopback(23) },
        {
          mx: [
            { name: "backup.test", host: "dead.backup.test", preference: 10 },
            { name: "backup.test", host: "mx.dest.test", preference: 20 },
            { name: "null.test", host: ".", preference: 0 },
          ],
          // Nothing listens on 127.x.y.22:25: connection refused, next MX.
          hosts: [{ name: "dead.backup.test", addresses: [loopback(22)] }],
          txt,
        },
      );
      const sink = await startCaptureServer({
        host: loopback(21),
        port: 25,
        rcptReply: (a) => (a.startsWith("nobody@") ? "550 5.1.1 No such user" : undefined),
      });
      const opts = deliveryOptions(dns);
      try {
        const body = enc(
          "From: Alice <alice@example.org>\r\nTo: bob@dest.test\r\nSubject: out\r\n\r\n" +
            "line one\r\n.starts with a dot\r\n\r\n",
        );
        await t.step("signed, delivered byte-exact; a refused recipient fails alone", async () => {
          const { message: signed, signedBy } = await signOutbound(
            message(["bob@dest.test", "nobody@dest.test"], body),
            (d) => keys.keysFor(d),
          );
          assertEquals(signedBy, "example.org");
          const r = await deliverToDomain("dest.test", signed, opts);
          assertEquals(r.host, `mx.dest.test[${loopback(21)}]`);
          assertEquals(r.recipients.map((x) => [x.id, x.outcome, x.reply.code]), [
            [0, "delivered", 250],
            [1, "failed", 550],
          ]);
          const got = sink.messages.at(-1);
          assert(got !== undefined);
          assertEquals(got.mailFrom, "alice@example.org");
          assertEquals(got.recipients, ["bob@dest.test"]);
          // What arrived is the signature fields followed by the message, byte for byte.
          const text = new TextDecoder().decode(got.body);
          assert(text.startsWith("DKIM-Signature: v=1; a=ed25519-sha256;"), text);
          assert(text.endsWith(new TextDecoder().decode(body)));
          const verdict = await verifyDkim(got.body, { dns: dns.address });
          assert(verdict.ok, verdict.output);
        });
        await t.step(
          "the first MX refuses the connection: the next one takes the mail",
          async () => {
            const before = sink.messages.length;
            const r = await deliverToDomain(
              "backup.test",
              message(["carol@backup.test"], body),
              opts,
            );
            assertEquals(r.host, `mx.dest.test[${loopback(21)}]`);
            assertEquals(r.recipients.map((x) => x.outcome), ["delivered"]);
            assertEquals(sink.messages.length, before + 1);
          },
        );
        await t.step(
          "null MX: failed at once with 556 5.1.10 (RFC 7504), no connection",
          async () => {
            const connections = sink.connections;
            const r = await deliverToDomain("null.test", message(["x@null.test"], body), opts);
            assertEquals(r.recipients.map((x) => [x.outcome, x.reply.code, x.reply.enhanced]), [
              ["failed", 556, "5.1.10"],
            ]);
            assertEquals(sink.connections, connections);
          },
        );
        await t.step("no such domain: failed with 5.1.2", async () => {
          const r = await deliverToDomain("nowhere.test", message(["x@nowhere.test"], body), opts);
          assertEquals(r.recipients.map((x) => [x.outcome, x.reply.enhanced]), [[
            "failed",
            "5.1.2",
          ]]);
        });
        await t.step("Postfix's smtp-sink on port 25 takes three messages", async () => {
          await using postfix = await SmtpSink.start({ host: loopback(23), port: 25 }, {
            dumpDir: true,
          });
          for (let i = 0; i < 3; i++) {
            const r = await deliverToDomain(
              "postfix.test",
              message([`u${i}@postfix.test`], body),
              opts,
            );
            assertEquals(r.host, `mx.postfix.test[${loopback(23)}]`);
            assertEquals(r.recipients.map((x) => x.outcome), ["delivered"]);
          }
          assertEquals(await postfix.count(), 3);
        });
        await t.step("a message from a domain without keys goes out unsigned", async () => {
          const other = enc("From: x@unsigned.example\r\n\r\nhi\r\n");
          const { message: m, signedBy } = await signOutbound(
            message(["bob@dest.test"], other),
            (d) => keys.keysFor(d),
          );
          assertEquals(signedBy, undefined);
          await deliverToDomain("dest.test", m, opts);
          assertEquals(sink.messages.at(-1)?.body, other);
        });
      } finally {
        await sink.close();
      }
    });
  },
);
