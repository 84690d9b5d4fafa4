/**
 * Attacks on the ODMR port of the real `serve` process (SECURITY.md): taking mail that is not
 * yours (other users' domains, parent/child, case and trailing-dot tricks, ATRN after a failed
 * or a second AUTH), SCRAM tampering, CRAM-MD5 replay, endless AUTH failures, connection
 * floods, slowloris, and a customer that stops reading mid-drain.
 */
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { Buffer } from "node:buffer";
import { queueList, startServer } from "../_helpers/server_process.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { submit } from "../_helpers/smtp_submit.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import { cram, greeted, RawClient } from "./_raw.ts";
import { addUsers, withServe } from "./_serve.ts";

const enc = new TextEncoder();
const PW = { alice: "alice-pw", bob: "bob-pw", carol: "carol-pw" } as const;
type Listed = { from: string; recipients: { address: string; status: string }[] }[];

const USERS = [
  { name: "alice", domains: ["example.org", "example.com"], password: PW.alice },
  { name: "bob", domains: ["bob.example"], password: PW.bob },
  { name: "carol", domains: ["sub.example.org"], password: PW.carol },
];

/** Runs `fn` on a serve with a 2 s timeout; `dataDir`: one prepared earlier (users added). */
function withProvider(
  fn: (server: ServerProcess, port: number) => Promise<void>,
  config: Record<string, unknown> = {},
  dataDir?: string,
): Promise<void> {
  return withServe(
    { smtp: { timeout: "2s" }, ...config },
    (server) => fn(server, server.odmr[0]!.port), // startServer waited for an odmr listener
    dataDir === undefined ? { users: USERS } : { dataDir },
  );
}

const b64 = (s: string | Uint8Array) => Buffer.from(s).toString("base64");

/** SCRAM-SHA-256 with optional tampering of the client-final message. */
async function scram(
  c: RawClient,
  user: string,
  password: string,
  tamper: "none" | "nonce" | "proof" | "channelBinding" = "none",
): Promise<string> {
  const cnonce = randomBytes(18).toString("base64").replace(/[,=]/g, "x");
  const bare = `n=${user},r=${cnonce}`;
  const first = await c.command(`AUTH SCRAM-SHA-256 ${b64(`n,,${bare}`)}`);
  if (!first.startsWith("334 ")) return first;
  const serverFirst = Buffer.from(first.slice(4), "base64").toString("latin1");
  const attrs = new Map(serverFirst.split(",").map((kv) => [kv[0], kv.slice(2)]));
  let nonce = attrs.get("r") ?? "";
  const salted = pbkdf2Sync(
    password,
    Buffer.from(attrs.get("s") ?? "", "base64"),
    Number(attrs.get("i")),
    32,
    "sha256",
  );
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  if (tamper === "nonce") nonce = nonce.slice(0, -1) + (nonce.endsWith("A") ? "B" : "A");
  const cbind = tamper === "channelBinding" ? "eSws" : "biws";
  const withoutProof = `c=${cbind},r=${nonce}`;
  const authMessage = `${bare},${serverFirst},${withoutProof}`;
  const sig = createHmac("sha256", storedKey).update(authMessage).digest();
  const proof = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) proof[i] = (clientKey[i] ?? 0) ^ (sig[i] ?? 0);
  if (tamper === "proof") proof[0] = (proof[0] ?? 0) ^ 1;
  const fin = await c.command(b64(`${withoutProof},p=${proof.toString("base64")}`));
  if (!fin.startsWith("334 ")) return fin;
  return await c.command("");
}

Deno.test("ODMR authorization: nobody takes mail that is not theirs", async (t) => {
  await withProvider(async (server, port) => {
    for (const to of ["a@example.org", "b@sub.example.org", "c@bob.example"]) {
      const s = await submit({
        port: server.smtp[0]!.port,
        from: "s@remote.test",
        to: [to],
        body: enc.encode(`Subject: for ${to}\r\n\r\nmail\r\n`),
      });
      assertMatch(s.final ?? "", /^250 /);
    }
    // Each row: alice (owner of example.org, example.com) asks for what is not hers.
    const rows: { atrn: string; want: RegExp; why: string }[] = [
      { atrn: "bob.example", want: /^450 4\.7\.1 /, why: "another user's domain" },
      { atrn: "BOB.Example", want: /^450 4\.7\.1 /, why: "another user's domain in mixed case" },
      { atrn: "bob.example.", want: /^501 5\.5\.4 /, why: "trailing dot" },
      { atrn: "sub.example.org", want: /^450 4\.7\.1 /, why: "child domain owned by carol" },
      { atrn: "org", want: /^501 5\.5\.4 /, why: "a single-label parent" },
      { atrn: "example.org,bob.example", want: /^450 4\.7\.1 /, why: "mixed list: all or nothing" },
      { atrn: "example.org, BOB.EXAMPLE ", want: /^450 4\.7\.1 /, why: "mixed list with spaces" },
      { atrn: "*.example.org", want: /^501 5\.5\.4 /, why: "wildcard" },
      { atrn: "example.org@bob.example", want: /^501 5\.5\.4 /, why: "address-like" },
      { atrn: "[127.0.0.1]", want: /^501 5\.5\.4 /, why: "address literal" },
    ];
    for (const row of rows) {
      await t.step(`alice: ATRN ${row.atrn} (${row.why})`, async () => {
        using c = await greeted(port);
        assertMatch((await cram(c, "alice", PW.alice)).reply, /^235 /);
        assertMatch(await c.command(`ATRN ${row.atrn}`), row.want);
      });
    }
    await t.step("carol (child domain) cannot take the parent's mail", async () => {
      using c = await greeted(port);
      assertMatch((await cram(c, "carol", PW.carol)).reply, /^235 /);
      assertMatch(await c.command("ATRN example.org"), /^450 4\.7\.1 /);
      assertMatch(await c.command("ATRN EXAMPLE.ORG"), /^450 4\.7\.1 /);
    });
    await t.step("ATRN after a failed AUTH is 530 5.7.0", async () => {
      using c = await greeted(port);
      assertMatch((await cram(c, "alice", "wrong")).reply, /^535 5\.7\.8 /);
      assertMatch(await c.command("ATRN example.org"), /^530 5\.7\.0 /);
      assertMatch(await c.command("ATRN"), /^530 5\.7\.0 /);
    });
    await t.step("a second AUTH after success is 503 5.5.1 and does not switch users", async () => {
      using c = await greeted(port);
      assertMatch((await cram(c, "carol", PW.carol)).reply, /^235 /);
      assertMatch(await c.command("AUTH CRAM-MD5"), /^503 5\.5\.1 /);
      assertMatch(await c.command("ATRN example.org"), /^450 4\.7\.1 /);
    });
    await t.step(
      "a user without the mail gets 453 for their own domain, nothing else",
      async () => {
        using c = await greeted(port);
        assertMatch((await cram(c, "alice", PW.alice)).reply, /^235 /);
        assertMatch(await c.command("ATRN example.com"), /^453 /);
      },
    );
    for (const tamper of ["nonce", "proof", "channelBinding"] as const) {
      await t.step(`SCRAM-SHA-256 with a tampered ${tamper} fails and ATRN stays 530`, async () => {
        using c = await greeted(port);
        assertMatch(await scram(c, "alice", PW.alice, tamper), /^5\d\d /);
        assertMatch(await c.command("ATRN example.org"), /^530 /);
      });
    }
    await t.step("control: untampered SCRAM-SHA-256 authenticates", async () => {
      using c = await greeted(port);
      assertMatch(await scram(c, "alice", PW.alice), /^235 /);
    });
    await t.step("CRAM-MD5: an old response replayed on a new connection is 535", async () => {
      const first = await greeted(port);
      let old: string;
      try {
        const r = await cram(first, "carol", PW.carol);
        assertMatch(r.reply, /^235 /);
        old = r.sent;
      } finally {
        first.close();
      }
      using second = await greeted(port);
      assertMatch((await cram(second, "carol", "", old)).reply, /^535 5\.7\.8 /);
      assertMatch(await second.command("ATRN sub.example.org"), /^530 /);
    });
    // Every message is still queued: no attack above took any.
    const queued = await queueList(server.configPath) as Listed;
    assertEquals(
      queued.flatMap((m) => m.recipients.map((r) => `${r.address}:${r.status}`)).sort(),
      ["a@example.org:queued", "b@sub.example.org:queued", "c@bob.example:queued"],
    );
  });
});

Deno.test("ODMR: endless AUTH failures get a growing delay, then 421 4.7.0", async () => {
  await withProvider(async (_server, port) => {
    using c = await greeted(port, "127.0.0.9");
    const took: number[] = [];
    const replies: string[] = [];
    for (let i = 0; i < 5 && !c.isClosed; i++) {
      const started = Date.now();
      const r = (await cram(c, "nosuchuser", "guess")).reply;
      took.push(Date.now() - started);
      replies.push(r);
      if (r.startsWith("421")) break;
    }
    assertEquals(replies.slice(0, -1).every((r) => /^535 5\.7\.8 /.test(r)), true);
    assertMatch(replies.at(-1) ?? "", /^421 4\.7\.0 /);
    assert(took.at(-1)! > took[0]! + 500, `the delay grows: ${took.join(", ")} ms`);
    assert(await c.waitClosed(2_000));
  });
});

Deno.test("ODMR: slowloris and connection floods get 421", async (t) => {
  await withProvider(async (_server, port) => {
    await t.step("a command trickled byte by byte gets 421 4.4.2 within the timeout", async () => {
      using c = await RawClient.connect(port);
      assertMatch(await c.reply(), /^220 /);
      const started = Date.now();
      const line = "EHLO slow.customer.test\r\n";
      for (let i = 0; i < line.length && !c.isClosed && Date.now() - started < 8_000; i++) {
        await c.write(line[i] as string);
        await new Promise((r) => setTimeout(r, 400));
      }
      assertMatch(await c.reply(2_000), /^421 4\.4\.2 /);
      assert(Date.now() - started < 6_000);
    });
    await t.step("per IP and in total: the connection over the limit gets 421 4.7.0", async () => {
      const open: RawClient[] = [];
      try {
        for (let i = 0; i < 2; i++) open.push(await greeted(port, "127.0.0.21"));
        const third = await RawClient.connect(port, "127.0.0.21");
        open.push(third);
        assertMatch(await third.reply(), /^421 4\.7\.0 /);
        for (let i = 0; i < 2; i++) open.push(await greeted(port, "127.0.0.22"));
        // (#10) Full of unauthenticated connections: the newcomer gets in and the oldest
        // stranger is told 421 4.7.0 instead (tests/security/slots_test.ts has the details).
        const fifth = await RawClient.connect(port, "127.0.0.23");
        open.push(fifth);
        assertMatch(await fifth.reply(), /^220 /);
        assertMatch(await open[0]!.reply(), /^421 4\.7\.0 /);
      } finally {
        for (const c of open) c.close();
      }
    });
  }, { smtp: { timeout: "2s", max_connections: 4, max_connections_per_ip: 2 } });
});

Deno.test("ODMR: a customer that stops reading mid-drain is cut by the write timeout; the lease is released", async () => {
  // Bigger than the loopback socket buffers, so the provider's writes must block. It is queued
  // by a serve with the default timeout first: under load, 24 MB through the MX with the 2 s
  // timeout below could be cut by that timeout (BrokenPipe at the sender), which is not what
  // this test is about.
  const line = `${"z".repeat(998)}\r\n`;
  const body = enc.encode(`Subject: big\r\n\r\n${line.repeat(24 * 1024)}`);
  const dataDir = await Deno.makeTempDir({ prefix: "odmr-e2e-" });
  const filler = await startServer({ dataDir, configPath: `${dataDir}.filler.yaml` });
  try {
    await addUsers(filler.configPath, USERS);
    const s = await submit({
      port: filler.smtp[0]!.port,
      from: "s@remote.test",
      to: ["big@example.org"],
      body,
    });
    assertMatch(s.final ?? "", /^250 /, filler.logs());
  } finally {
    assertEquals(await filler.stop(), 0, filler.logs());
    await Deno.remove(`${dataDir}.filler.yaml`).catch(() => {});
  }
  await withProvider(
    async (server, port) => {
      const c = await greeted(port);
      const started = Date.now();
      try {
        assertMatch((await cram(c, "alice", PW.alice)).reply, /^235 /);
        assertMatch(await c.command("ATRN example.org"), /^250 /);
        await c.write("220 customer.test ESMTP\r\n");
        let got = "";
        while (!/^EHLO /m.test(got)) {
          await new Promise((r) => setTimeout(r, 20));
          got = c.pending;
          assert(Date.now() - started < 5_000, "EHLO from the provider");
        }
        await c.write("250 customer.test\r\n");
        // The provider pipelines MAIL, RCPT, DATA; accept them, then stop reading for good.
        await c.write("250 2.1.0 OK\r\n250 2.1.5 OK\r\n354 go\r\n");
        c.pause();
        // A paused socket never sees the FIN, so watch the queue: "delivering" → "queued" is
        // the provider giving up and releasing the lease.
        let status = "";
        while (Date.now() - started < 20_000) {
          const l = await queueList(server.configPath) as Listed;
          status = l[0]?.recipients[0]?.status ?? "";
          if (status === "queued") break;
          await new Promise((r) => setTimeout(r, 250));
        }
        assertEquals(status, "queued", `the lease was released in time:\n${server.logs()}`);
      } finally {
        c.close();
      }
      // The lease is released: the next session takes the mail, byte-exact.
      const next = await runScriptedCustomer({
        port,
        auth: { mechanism: "CRAM-MD5", user: "alice", password: PW.alice },
        atrn: "example.org",
      });
      assertMatch(next.atrnReply ?? "", /^250 /);
      assertEquals(next.messages.length, 1);
      assertEquals(next.messages[0]!.data.length >= body.length, true);
      assertEquals(await queueList(server.configPath), []);
    },
    {},
    dataDir,
  );
});
