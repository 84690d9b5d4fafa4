/**
 * Connection reuse per destination: deliverBatch looks the MX up once and sends many messages
 * in one SMTP session, with real parts (dnsmasq; byte-exact capture servers and Postfix's
 * smtp-sink on 127.x.y.3x:25, loopback(): this process's own addresses, on the port a
 * deployment uses; tests run as root). The capture server counts connections, so "one
 * connection" is measured at the receiving side.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import net from "node:net";
import { deliverBatch } from "../../src/outbound/deliver.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { deliveryOptions, loopback, startMxDns } from "../_helpers/outbound_world.ts";
import { SmtpSink } from "../_helpers/smtp_sink.ts";
import { canBindPort25, toolTest } from "../_helpers/tools.ts";
import { numbered, runNumbered } from "./_batch_fixtures.ts";

const enc = (s: string) => new TextEncoder().encode(s);

/** A host that greets with 421 and hangs up (busy before any transaction). */
async function startBusyHost(
  host: string,
): Promise<{ connections(): number; close(): Promise<void> }> {
  let connections = 0;
  const server = net.createServer((s) => {
    connections++;
    s.on("error", () => {});
    s.end("421 4.3.2 Too busy, try later\r\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(25, host, () => resolve());
  });
  return {
    connections: () => connections,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

await toolTest("deliverBatch: many messages over one connection, MX order, fallback", [
  "dnsmasq",
  "smtp-sink",
], async (t) => {
  if (!canBindPort25("deliverBatch", "127.x.y.3x")) return;
  await using dns = await startMxDns({ "reuse.test": loopback(31), "postfix.test": loopback(35) }, {
    mx: [
      // Preference order: the lower one (10, .32) takes the mail although it is listed last.
      { name: "pref.test", host: "backup.pref.test", preference: 20 },
      { name: "pref.test", host: "primary.pref.test", preference: 10 },
      // The first MX has two addresses: nothing listens on the first, the second is busy (421).
      { name: "fallback.test", host: "bad.fallback.test", preference: 5 },
      { name: "fallback.test", host: "mx.reuse.test", preference: 50 },
      { name: "null.test", host: ".", preference: 0 },
      { name: "plain.test", host: "mx.reuse.test", preference: 10 },
    ],
    hosts: [
      { name: "primary.pref.test", addresses: [loopback(32)] },
      { name: "backup.pref.test", addresses: [loopback(31)] },
      { name: "bad.fallback.test", addresses: [loopback(33), loopback(34)] },
    ],
  });
  const sink = await startCaptureServer({
    host: loopback(31),
    port: 25,
    rcptReply: (a) => (a === "u2@reuse.test" ? "550 5.1.1 No such user" : undefined),
    mailReply: (a) => (a.startsWith("tempfail@") ? "451 4.3.0 Try later" : undefined),
  });
  const primary = await startCaptureServer({ host: loopback(32), port: 25 });
  const busy = await startBusyHost(loopback(34));
  const opts = deliveryOptions(dns);
  try {
    await t.step("10 messages arrive byte-exact, in order, over ONE connection", async () => {
      const before = { connections: sink.connections, messages: sink.messages.length };
      const batch = numbered("reuse.test", 10);
      const { results, sessions } = await runNumbered("reuse.test", batch, opts);
      assertEquals(sessions, 1);
      assertEquals(sink.connections - before.connections, 1);
      // u2 is refused at RCPT: that message fails alone, the session goes on.
      assertEquals(
        [...results.entries()].sort(([a], [b]) => a - b).map((
          [n, r],
        ) => [n, r.recipients[0]?.outcome]),
        batch.map((m) => [m.n, m.n === 2 ? "failed" : "delivered"]),
      );
      assertEquals(results.get(0)?.host, `mx.reuse.test[${loopback(31)}]`);
      const got = sink.messages.slice(before.messages);
      assertEquals(
        got.map((m) => m.recipients),
        batch.filter((m) => m.n !== 2).map((m) => [`u${m.n}@reuse.test`]),
      );
      for (const m of got) {
        const n = Number(m.recipients[0]?.slice(1, m.recipients[0].indexOf("@")));
        assertEquals(m.body, enc(`From: a@example.org\r\nSubject: m${n}\r\n\r\nbody ${n}\r\n`));
      }
    });

    await t.step("a refused MAIL defers that message only, on the same connection", async () => {
      const before = sink.connections;
      const batch = numbered("plain.test", 3).map((m) =>
        m.n === 1 ? { ...m, mailFrom: "tempfail@example.org" } : m
      );
      const { results } = await runNumbered("plain.test", batch, opts);
      assertEquals([0, 1, 2].map((n) => results.get(n)?.recipients[0]?.outcome), [
        "delivered",
        "deferred",
        "delivered",
      ]);
      assertEquals(results.get(1)?.recipients[0]?.reply.code, 451);
      assertEquals(sink.connections - before, 1);
    });

    await t.step(
      "MX preference: the lower preference takes all, the other is not contacted",
      async () => {
        const before = { primary: primary.connections, backup: sink.connections };
        const { results } = await runNumbered("pref.test", numbered("pref.test", 4), opts);
        assertEquals(
          [...results.values()].map((r) => r.host),
          Array(4).fill(`primary.pref.test[${loopback(32)}]`),
        );
        assertEquals(primary.connections - before.primary, 1);
        assertEquals(sink.connections - before.backup, 0);
      },
    );

    await t.step(
      "an unreachable address, then a 421 greeting: the next MX takes every message",
      async () => {
        const before = { sink: sink.connections, busy: busy.connections() };
        const { results, sessions } = await runNumbered(
          "fallback.test",
          numbered("fallback.test", 5),
          opts,
        );
        assertEquals(sessions, 1);
        assertEquals(busy.connections() - before.busy, 1);
        assertEquals(sink.connections - before.sink, 1);
        for (const r of results.values()) {
          assertEquals(r.host, `mx.reuse.test[${loopback(31)}]`);
          assertEquals(r.recipients[0]?.outcome, "delivered");
        }
      },
    );

    await t.step(
      "null MX: every message failed at once with 556 5.1.10, no connection",
      async () => {
        const before = sink.connections;
        const { results, sessions } = await runNumbered(
          "null.test",
          numbered("null.test", 3),
          opts,
        );
        assertEquals(sessions, 0);
        assertEquals(results.size, 3);
        for (const r of results.values()) {
          assertEquals([
            r.recipients[0]?.outcome,
            r.recipients[0]?.reply.code,
            r.recipients[0]?.reply.enhanced,
          ], [
            "failed",
            556,
            "5.1.10",
          ]);
        }
        assertEquals(sink.connections, before);
      },
    );

    await t.step(
      "required TLS and an MX without STARTTLS: every message deferred 4.7.10, none sent",
      async () => {
        const before = sink.messages.length;
        const { results, sessions } = await runNumbered("plain.test", numbered("plain.test", 3), {
          ...opts,
          tls: "required",
        });
        assertEquals(sessions, 0);
        assertEquals(results.size, 3);
        for (const r of results.values()) {
          assertEquals([r.recipients[0]?.outcome, r.recipients[0]?.reply.enhanced], [
            "deferred",
            "4.7.10",
          ]);
        }
        assertEquals(sink.messages.length, before);
      },
    );

    await t.step(
      "a session lost mid-body after two deliveries: the same host again for the rest",
      async () => {
        const dropping = await startCaptureServer({
          host: loopback(36),
          port: 25,
          closeAfterBodyBytes: 2000,
        });
        await using dns2 = await startMxDns({ "drop.test": loopback(36) });
        try {
          // Message 2 is large (1 MB): the host drops the connection early in its body.
          const batch = numbered(
            "drop.test",
            5,
            (n) =>
              n === 2
                ? enc(`Subject: big\r\n\r\n${`${"y".repeat(70)}\r\n`.repeat(15_000)}`)
                : enc(`Subject: m${n}\r\n\r\nbody ${n}\r\n`),
          );
          const { results, sessions } = await runNumbered("drop.test", batch, {
            ...opts,
            nameServer: { ipAddr: dns2.ipAddr, port: dns2.port },
          });
          const outcomes = [0, 1, 2, 3, 4].map((n) => results.get(n)?.recipients[0]?.outcome);
          // Message 3 is sent again on the new connection, unless its envelope had already
          // gone out pipelined behind the cut body (then it waits for the retry, like 2).
          assert(outcomes[3] === "delivered" || outcomes[3] === "deferred", String(outcomes[3]));
          assertEquals(outcomes, ["delivered", "delivered", "deferred", outcomes[3], "delivered"]);
          assertEquals(sessions, 2);
          assertEquals(dropping.connections, 2);
          // Each delivered message arrived exactly once, nothing else did.
          const delivered = [0, 1, 3, 4].filter((n) => outcomes[n] === "delivered");
          assertEquals(
            dropping.messages.map((m) => m.recipients[0]),
            delivered.map((n) => `u${n}@drop.test`),
          );
        } finally {
          await dropping.close();
        }
      },
    );

    await t.step("Postfix's smtp-sink takes 20 messages in one session", async () => {
      await using postfix = await SmtpSink.start({ host: loopback(35), port: 25 }, {
        dumpDir: true,
      });
      const { results, sessions } = await runNumbered(
        "postfix.test",
        numbered("postfix.test", 20),
        opts,
      );
      assertEquals(sessions, 1);
      assertEquals(
        [...results.values()].filter((r) => r.recipients[0]?.outcome === "delivered").length,
        20,
      );
      assertEquals(await postfix.count(), 20);
    });

    await t.step(
      "stop: no further message is taken; those not taken are not reported",
      async () => {
        const stop = new AbortController();
        const batch = numbered("reuse.test", 6);
        const seen: number[] = [];
        const summary = await deliverBatch(
          "reuse.test",
          batch,
          { ...opts, stop: stop.signal },
          (m) => {
            seen.push(m.n);
            if (m.n === 1) stop.abort();
          },
        );
        // Under PIPELINING the message after the one in flight may already be on the wire: it is
        // still reported; nothing after it.
        assert(seen.length >= 2 && seen.length <= 3, `reported ${seen.join(",")}`);
        assertEquals(seen, [0, 1, 2].slice(0, seen.length));
        assertEquals(summary.messages, seen.length);
      },
    );
  } finally {
    await sink.close();
    await primary.close();
    await busy.close();
  }
});
