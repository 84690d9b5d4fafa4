/**
 * The ODMR provider end to end: the real `serve` process, mail injected on its SMTP port,
 * and a scripted customer (tests/_helpers/scripted_customer.ts) on its ODMR port.
 */
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { queueList } from "../_helpers/server_process.ts";
import { endsWithBytes } from "../_helpers/bytes.ts";
import { type Listed, withProvider } from "./_provider.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import { submitAccepted } from "../_helpers/smtp_submit.ts";
import { testCaOrSkip } from "../_helpers/certs.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const ALICE = { mechanism: "CRAM-MD5" as const, user: "alice", password: "alice-pw" };

Deno.test("ATRN over CRAM-MD5 delivers only the claimed domains, byte-exact, and settles them", async () => {
  await withProvider(async (server) => {
    const smtp = server.smtp[0]!; // startServer waited for at least one smtp listener
    const bodyA = enc.encode(
      "Subject: a\r\n\r\n.leading dot\r\n..two dots\r\n8-bit: \xe9\xe8 caf\u00e9\r\n",
    );
    const bodyB = Uint8Array.from([
      ...enc.encode("Subject: b\r\n\r\n"),
      ...[0x80, 0xff, 0x00, 0x7f, 0x20].map((b) => b === 0 ? 0x41 : b),
      13,
      10,
    ]);
    await submitAccepted({
      port: smtp.port,
      from: "sender@remote.test",
      to: ["one@example.org", "two@bob.example"],
      body: bodyA,
    });
    await submitAccepted({
      port: smtp.port,
      from: "",
      to: ["x@EXAMPLE.ORG"],
      body: bodyB,
      mailParams: "BODY=8BITMIME",
    });

    const r = await runScriptedCustomer({
      port: server.odmr[0]!.port,
      auth: ALICE,
      atrn: "example.org",
    });
    assert(r.ehlo.some((l) => /ATRN/.test(l)), "EHLO lists ATRN");
    assert(r.ehlo.some((l) => /AUTH .*CRAM-MD5/.test(l)), "EHLO lists AUTH CRAM-MD5");
    assertMatch(r.authReply ?? "", /^235 /);
    assertMatch(r.atrnReply ?? "", /^250 /);
    assertEquals(r.messages.length, 2);
    const [m1, m2] = r.messages;
    assertEquals(m1!.rcpts, ["one@example.org"], "only the claimed domain is sent");
    assertEquals(m1!.mailFrom, "sender@remote.test");
    assert(dec.decode(m1!.data).startsWith("Received: "), "the relay's trace header comes first");
    assert(endsWithBytes(m1!.data, bodyA), "body A arrives byte-exact after the Received: header");
    assertEquals(m2!.mailFrom, "");
    assert(endsWithBytes(m2!.data, bodyB), "8-bit body B arrives byte-exact");
    assert(r.sawQuit, "the provider ends with QUIT");

    const left = await queueList(server.configPath) as Listed;
    assertEquals(left.length, 1, "only bob's copy is left");
    assertEquals(left[0]!.recipients.map((x) => x.address), ["two@bob.example"]);
  });
});

Deno.test("ATRN replies: 530 before AUTH, 535 on a wrong password, 450 for a foreign domain, 501 on bad syntax, 453 when empty", async () => {
  await withProvider(async (server) => {
    const port = server.odmr[0]!.port;
    const noAuth = await runScriptedCustomer({ port, atrn: "example.org" });
    assertMatch(noAuth.atrnReply ?? "", /^530 5\.7\.0/);

    const wrong = await runScriptedCustomer({
      port,
      auth: { ...ALICE, password: "nope" },
      atrn: "example.org",
    });
    assertMatch(wrong.authReply ?? "", /^535 5\.7\.8/);
    assertMatch(wrong.atrnReply ?? "", /^530 /, "a failed AUTH does not authenticate");

    const foreign = await runScriptedCustomer({
      port,
      auth: ALICE,
      atrn: "example.org,bob.example",
    });
    assertMatch(foreign.atrnReply ?? "", /^450 4\.7\.1/);

    const child = await runScriptedCustomer({ port, auth: ALICE, atrn: "sub.example.org" });
    assertMatch(child.atrnReply ?? "", /^450 /, "a subdomain is not the parent's");

    const bad = await runScriptedCustomer({ port, auth: ALICE, atrn: "example.org,,x" });
    assertMatch(bad.atrnReply ?? "", /^501 5\.5\.4/);

    const empty = await runScriptedCustomer({ port, auth: ALICE, atrn: "" });
    assertMatch(empty.atrnReply ?? "", /^453 /);
  });
});

Deno.test("SCRAM-SHA-256 authenticates a customer and bare ATRN claims every domain it owns", async () => {
  await withProvider(async (server) => {
    const smtp = server.smtp[0]!;
    for (const to of ["a@example.org", "b@example.com"]) {
      await submitAccepted({
        port: smtp.port,
        from: "s@remote.test",
        to: [to],
        body: enc.encode("x\r\n"),
      });
    }
    const r = await runScriptedCustomer({
      port: server.odmr[0]!.port,
      auth: { ...ALICE, mechanism: "SCRAM-SHA-256" },
      atrn: "",
    });
    assertMatch(r.authReply ?? "", /^235 /);
    assertEquals(r.messages.flatMap((m) => m.rcpts).sort(), ["a@example.org", "b@example.com"]);
    assertEquals(await queueList(server.configPath), []);
  });
});

Deno.test("PLAIN is refused without TLS with 538 5.7.11", async () => {
  await withProvider(async (server) => {
    const r = await runScriptedCustomer({
      port: server.odmr[0]!.port,
      auth: { ...ALICE, mechanism: "PLAIN" },
      atrn: "example.org",
    });
    assertMatch(r.authReply ?? "", /^538 5\.7\.11/);
  });
});

Deno.test("Per-recipient replies settle the queue: 250 removes, 4xx keeps queued, 5xx marks failed", async () => {
  await withProvider(async (server) => {
    await submitAccepted({
      port: server.smtp[0]!.port,
      from: "s@remote.test",
      to: ["ok@example.org", "later@example.org", "gone@example.org"],
      body: enc.encode("Subject: settle\r\n\r\nbody\r\n"),
    });
    const r = await runScriptedCustomer({
      port: server.odmr[0]!.port,
      auth: ALICE,
      atrn: "example.org",
      rcptReply: (a) =>
        a.startsWith("later")
          ? "451 4.3.0 try later"
          : a.startsWith("gone")
          ? "550 5.1.1 no such user"
          : "250 2.1.5 OK",
    });
    assertEquals(r.messages.length, 1);
    assertEquals(r.messages[0]!.rcpts, ["ok@example.org"]);
    const listed = await queueList(server.configPath) as Listed;
    const left = listed.filter((m) => m.from !== "");
    assertEquals(left.length, 1);
    const byAddr = new Map(left[0]!.recipients.map((x) => [x.address, x.status]));
    assertEquals(byAddr.get("ok@example.org"), undefined, "delivered recipient is gone");
    assertEquals(byAddr.get("later@example.org"), "queued");
    assertEquals(byAddr.get("gone@example.org"), "failed");
    // The 550 is reported to the foreign sender through the outbound queue (issue 15).
    const reports = listed.filter((m) => m.from === "");
    assertEquals(reports.map((m) => m.recipients.map((x) => [x.address, x.route])), [
      [["s@remote.test", "mx"]],
    ]);
  });
});

Deno.test("A connection dropped mid-DATA leaves the message queued for the next ATRN", async () => {
  await withProvider(async (server) => {
    const body = enc.encode("Subject: drop\r\n\r\n" + "line of text\r\n".repeat(2000));
    await submitAccepted({
      port: server.smtp[0]!.port,
      from: "s@remote.test",
      to: ["d@example.org"],
      body,
    });
    const first = await runScriptedCustomer({
      port: server.odmr[0]!.port,
      auth: ALICE,
      atrn: "example.org",
      dropAfterBodyBytes: 1000,
    });
    assertEquals(first.messages.length, 0);
    // The provider notices the drop and releases the lease; a retry gets the message whole.
    let second = await runScriptedCustomer({
      port: server.odmr[0]!.port,
      auth: ALICE,
      atrn: "example.org",
    });
    for (let i = 0; i < 20 && (second.atrnReply ?? "").startsWith("451"); i++) {
      await new Promise((r) => setTimeout(r, 100));
      second = await runScriptedCustomer({
        port: server.odmr[0]!.port,
        auth: ALICE,
        atrn: "example.org",
      });
    }
    assertEquals(second.messages.length, 1);
    assert(endsWithBytes(second.messages[0]!.data, body));
    assertEquals(await queueList(server.configPath), []);
  });
});

Deno.test("A second ATRN for a domain being drained gets 451 and takes nothing", async () => {
  await withProvider(async (server) => {
    await submitAccepted({
      port: server.smtp[0]!.port,
      from: "s@remote.test",
      to: ["c@example.org"],
      body: enc.encode("x\r\n"),
    });
    const port = server.odmr[0]!.port;
    const holder = runScriptedCustomer({
      port,
      auth: ALICE,
      atrn: "example.org",
      silentAfterAtrn: true,
      timeoutMs: 3000,
    });
    // Wait until the holder's ATRN was granted: its recipient shows as "delivering".
    for (let i = 0; i < 100; i++) {
      const l = await queueList(server.configPath) as Listed;
      if (l[0]?.recipients[0]?.status === "delivering") break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const second = await runScriptedCustomer({ port, auth: ALICE, atrn: "example.org" });
    assertMatch(second.atrnReply ?? "", /^451 /);
    assertEquals(second.messages.length, 0);
    const held = await holder;
    assertMatch(held.atrnReply ?? "", /^250 /);
  });
});

Deno.test("STARTTLS on the ODMR port: PLAIN works under TLS, AUTH is hidden before it with require_tls, and plaintext pipelined after STARTTLS is dropped", async (t) => {
  const ca = await testCaOrSkip("STARTTLS on the ODMR port");
  if (ca === undefined) return;
  const caCerts = [ca.caCertPem];
  try {
    await withProvider(async (server) => {
      const port = server.odmr[0]!.port;
      await t.step("EHLO before TLS offers STARTTLS and no AUTH", async () => {
        const r = await runScriptedCustomer({ port, atrn: "example.org" });
        assert(r.ehlo.some((l) => /STARTTLS/.test(l)));
        assert(!r.ehlo.some((l) => /AUTH/.test(l)), "require_tls hides every mechanism");
        assertMatch(r.atrnReply ?? "", /^530 /);
      });
      await t.step(
        "STARTTLS then PLAIN authenticates; EHLO after TLS has no STARTTLS",
        async () => {
          await submitAccepted({
            port: server.smtp[0]!.port,
            from: "s@remote.test",
            to: ["tls@example.org"],
            body: enc.encode("Subject: tls\r\n\r\nsecret\r\n"),
          });
          const r = await runScriptedCustomer({
            port,
            tls: "starttls",
            caCerts,
            auth: { ...ALICE, mechanism: "PLAIN" },
            atrn: "example.org",
          });
          assert(!r.ehlo.some((l) => /STARTTLS/.test(l)));
          assert(r.ehlo.some((l) => /AUTH .*PLAIN/.test(l)));
          assertMatch(r.authReply ?? "", /^235 /);
          assertEquals(r.messages.length, 1);
        },
      );
      await t.step("a command pipelined after STARTTLS in plaintext is not executed", async () => {
        const conn = await Deno.connect({ hostname: "127.0.0.1", port });
        const buf = new Uint8Array(4096);
        const readSome = async (c: Deno.Conn) => {
          const n = await c.read(buf);
          return n === null ? "" : dec.decode(buf.subarray(0, n));
        };
        await readSome(conn); // 220
        await conn.write(enc.encode("EHLO x.test\r\n"));
        let ehlo = "";
        while (!/^250 /m.test(ehlo)) ehlo += await readSome(conn);
        // CVE-2011-0411: NOOP rides in the same segment as STARTTLS.
        await conn.write(enc.encode("STARTTLS\r\nNOOP\r\n"));
        const ready = await readSome(conn);
        assertMatch(ready, /^220 /);
        assert(!/250 2\.0\.0 OK/.test(ready), "NOOP must not be answered in plaintext either");
        const tls = await Deno.startTls(conn, { hostname: "localhost", caCerts });
        try {
          await tls.write(enc.encode("EHLO x.test\r\n"));
          let after = "";
          while (!/^250 /m.test(after)) after += await readSomeTls(tls, buf);
          assert(after.startsWith("250-"), `first reply after TLS is the EHLO reply: ${after}`);
          assert(!/2\.0\.0 OK/.test(after), "the injected NOOP was not executed inside TLS");
        } finally {
          tls.close();
        }
      });
    }, {
      tls: { cert: ca.certPath, key: ca.keyPath },
      odmr: { require_tls: true },
    });
  } finally {
    await ca.cleanup();
  }
});

async function readSomeTls(c: Deno.TlsConn, buf: Uint8Array): Promise<string> {
  const n = await c.read(buf);
  if (n === null) throw new Error("closed");
  return dec.decode(buf.subarray(0, n));
}
