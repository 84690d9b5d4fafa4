/**
 * E2E: the submission port of the real `serve` — AUTH required (PLAIN/LOGIN only under TLS),
 * MAIL FROM only in the user's own domains, mail to our domains queued for ATRN, mail to
 * other domains queued for their MX only after AUTH, and the relay matrix: no address trick
 * names another host, and the MX port never takes a foreign recipient.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import {
  addUser,
  queueList,
  removeTestFiles,
  runMain,
  startServer,
} from "../_helpers/server_process.ts";
import { toolTest } from "../_helpers/tools.ts";
import { makeTestCa } from "../_helpers/certs.ts";
import { submissionPort } from "../_helpers/outbound_world.ts";
import { SmtpSession } from "../e2e/_smtp_session.ts";
import { cramSession as cramLogin } from "../e2e/_submission_client.ts";
import { swaksSubmit } from "../e2e/_swaks.ts";

const PASSWORD = "secret-password";
const ALICE = { user: "alice", password: PASSWORD, from: "alice@example.org" };

/** A plain session on `port`, EHLO, logged in as `user` with CRAM-MD5 (allowed without TLS). */
const cramSession = (port: number, user = "alice") => cramLogin(port, user, PASSWORD);

await toolTest("submission: AUTH required, own senders only, never an open relay", [
  "swaks",
  "openssl",
], async (t) => {
  const ca = await makeTestCa();
  assert(ca !== undefined, "openssl made the test CA");
  const server = await startServer({
    config: {
      tls: { cert: ca.certPath, key: ca.keyPath },
      submission: { listen: ["127.0.0.1:0"] },
    },
  });
  try {
    await addUser(server.configPath, "alice", ["example.org"], PASSWORD);
    await addUser(server.configPath, "bob", ["example.com"], PASSWORD);
    const port = submissionPort(server);

    await t.step("listening event: proto=submission, tls=starttls", () => {
      const l = server.listening.find((e) => e.proto === "submission");
      assertEquals(l?.tls, "starttls");
    });

    await t.step("the MX port has no AUTH: 500 5.5.1, and EHLO does not offer it", async () => {
      const mx = server.smtp[0];
      assert(mx !== undefined);
      using session = (await SmtpSession.open(mx.port)).session;
      // The last EHLO line; on the submission port AUTH is the last keyword.
      const last = await session.command("EHLO client.test");
      assert(!last.includes("AUTH"), last);
      match(await session.command("AUTH PLAIN AGFsaWNlAHg="), /^500 5\.5\.1/);
    });

    await t.step("without AUTH, MAIL gets 530 5.7.0 for every recipient form", async () => {
      using session = (await SmtpSession.open(port)).session;
      // Without TLS only the mechanisms that do not reveal the password are offered.
      assertEquals(await session.command("EHLO client.test"), "250 AUTH SCRAM-SHA-256 CRAM-MD5");
      for (const from of ["alice@example.org", "x@foreign.example", ""]) {
        match(await session.command(`MAIL FROM:<${from}>`), /^530 5\.7\.0/);
      }
      match(await session.command("RCPT TO:<bob@example.com>"), /^503 /);
    });

    await t.step("PLAIN and LOGIN are refused without TLS (538 5.7.11)", async () => {
      using session = (await SmtpSession.open(port)).session;
      await session.command("EHLO client.test");
      const plain = btoa(`\0alice\0${PASSWORD}`);
      await session.expectReplies([
        [`AUTH PLAIN ${plain}`, /^538 5\.7\.11/],
        ["AUTH LOGIN", /^538 5\.7\.11/],
        ["MAIL FROM:<alice@example.org>", /^530 /],
      ]);
    });

    await t.step("a wrong password gets 535 5.7.8 and no relay", async () => {
      const r = await swaksSubmit(port, { ...ALICE, password: "wrong" }, "bob@example.com");
      match(r.out, /535 5\.7\.8/);
      assert(r.code !== 0);
    });

    await t.step(
      "STARTTLS + AUTH PLAIN: mail to another of our domains is queued for ATRN",
      async () => {
        const r = await swaksSubmit(port, ALICE, "bob@example.com", [
          "--header",
          "Subject: submitted",
        ]);
        assertEquals(r.code, 0, r.out);
        match(r.out, /250 2\.6\.0/);
        const queued = await queueList(server.configPath, "example.com") as {
          from: string;
          recipients: { address: string }[];
        }[];
        assertEquals(queued.length, 1);
        assertEquals(queued[0]?.from, "alice@example.org");
        assertEquals(queued[0]?.recipients.map((x) => x.address), ["bob@example.com"]);
      },
    );

    await t.step("MAIL FROM outside the user's domains gets 553 5.7.1", async () => {
      using session = await cramSession(port);
      for (const from of ["alice@example.com", "alice@foreign.example", "a@sub.example.org"]) {
        match(await session.command(`MAIL FROM:<${from}>`), /^553 5\.7\.1/, from);
      }
      match(await session.command("MAIL FROM:<Alice@EXAMPLE.org>"), /^250 /);
    });

    await t.step(
      "authenticated relay matrix: a plain foreign address is taken, every trick is 550 5.7.1",
      async () => {
        using session = await cramSession(port);
        match(await session.command("MAIL FROM:<alice@example.org>"), /^250 /);
        const tricks = [
          "someone%foreign.example@example.com",
          "foreign.example!someone@example.com",
          '"someone@foreign.example"@example.com',
          "someone@[127.0.0.1]",
          "someone@[IPv6:::1]",
        ];
        for (const to of tricks) {
          match(await session.command(`RCPT TO:<${to}>`), /^550 5\.7\.1/, to);
        }
        // The user may write to the world: an ordinary foreign address is queued for its MX.
        match(await session.command("RCPT TO:<someone@foreign.example>"), /^250 /);
        // Control: the same session can address our own domain.
        match(await session.command("RCPT TO:<bob@example.com>"), /^250 /);
      },
    );

    await t.step(
      "submitted mail to our domain and to another one is queued in one transaction (issue 15)",
      async () => {
        using session = await cramSession(port);
        await session.expectReplies([
          ["MAIL FROM:<alice@example.org>", /^250 /],
          ["RCPT TO:<dave@example.com>", /^250 /],
          ["RCPT TO:<erin@elsewhere.example>", /^250 /],
          ["DATA", /^354 /],
        ]);
        await session.send("Subject: routes\r\n\r\nhello\r\n.\r\n");
        match(await session.readReply(), /^250 /);
        // Both wait in the same queue; tests/e2e/outbound_test.ts follows the foreign one out.
        const shown = await runMain(["queue", "list", "--json", "--config", server.configPath]);
        const listed = (JSON.parse(shown.stdout) as { recipients: { address: string }[] }[])
          .flatMap((m) => m.recipients.map((r) => r.address))
          .filter((a) => a === "dave@example.com" || a === "erin@elsewhere.example");
        assertEquals(listed.sort(), ["dave@example.com", "erin@elsewhere.example"]);
      },
    );

    await t.step(
      "the MX port never takes a foreign recipient, with submission on (550 5.7.1)",
      async () => {
        const mx = server.listening.find((e) => e.proto === "smtp");
        assert(mx !== undefined);
        using session = (await SmtpSession.open(mx.port)).session;
        match(await session.command("EHLO client.test"), /^250 /);
        // Even with one of our senders: the MX cannot tell a forged one.
        match(await session.command("MAIL FROM:<alice@example.org>"), /^250 /);
        for (
          const to of [
            "someone@foreign.example",
            "someone%foreign.example@example.com",
            "@example.com:someone@foreign.example",
          ]
        ) {
          match(await session.command(`RCPT TO:<${to}>`), /^550 5\.7\.1/, to);
        }
        match(await session.command("RCPT TO:<bob@example.com>"), /^250 /);
      },
    );

    await t.step("the trace header says ESMTPA (RFC 3848)", async () => {
      using session = await cramSession(port);
      const reply = await session.sendMessage(
        "alice@example.org",
        "carol@example.com",
        "Subject: trace\r\n\r\nhello\r\n",
      );
      match(reply, /^250 /);
      const shown = await runMain(["queue", "list", "--json", "--config", server.configPath]);
      const ids = (JSON.parse(shown.stdout) as { id: string; recipients: { address: string }[] }[])
        .filter((m) => m.recipients.some((r) => r.address === "carol@example.com"))
        .map((m) => m.id);
      assertEquals(ids.length, 1);
      const body = await runMain([
        "queue",
        "show",
        ids[0]!,
        "--config",
        server.configPath,
      ]);
      match(body.stdout, /with ESMTPA/);
    });
  } finally {
    await server.stop();
    await removeTestFiles(server);
    await ca.cleanup();
  }
});

await toolTest(
  "submission: per-message and hourly limits, each at N and N+1",
  ["openssl"],
  async (t) => {
    const server = await startServer({
      config: {
        submission: {
          listen: ["127.0.0.1:0"],
          max_recipients: 2,
          max_messages_per_hour: 3,
          max_recipients_per_hour: 5,
        },
      },
    });
    try {
      await addUser(server.configPath, "alice", ["example.org"], PASSWORD);
      await addUser(server.configPath, "bob", ["example.com"], PASSWORD);
      const port = submissionPort(server);
      using session = await cramSession(port);
      // One session, one user: each dialogue counts on what the ones before it used up.
      const dialogues: [string, [string, RegExp][]][] = [
        ["max_recipients 2: the second RCPT passes, the third gets 452 4.5.3", [
          ["MAIL FROM:<alice@example.org>", /^250 /],
          ["RCPT TO:<r1@example.com>", /^250 /],
          ["RCPT TO:<r2@example.com>", /^250 /],
          ["RCPT TO:<r3@example.com>", /^452 4\.5\.3/],
          ["RSET", /^250 /],
        ]],
        // Two recipients were counted above (the refused third never reached the policy).
        ["max_recipients_per_hour 5: the fifth passes, the sixth gets 450 4.7.1", [
          ["MAIL FROM:<alice@example.org>", /^250 /],
          ["RCPT TO:<r4@example.com>", /^250 /],
          ["RCPT TO:<r5@example.com>", /^250 /],
          ["RSET", /^250 /],
          ["MAIL FROM:<alice@example.org>", /^250 /],
          ["RCPT TO:<r6@example.com>", /^250 /],
          ["RCPT TO:<r7@example.com>", /^450 4\.7\.1/],
          ["RSET", /^250 /],
        ]],
        // Three MAIL commands were accepted above.
        ["max_messages_per_hour 3: the fourth MAIL gets 450 4.7.1", [
          ["MAIL FROM:<alice@example.org>", /^450 4\.7\.1/],
        ]],
      ];
      for (const [name, dialogue] of dialogues) {
        await t.step(name, () => session.expectReplies(dialogue));
      }
      await t.step("the limits are per user: bob is not affected", async () => {
        using other = await cramSession(port, "bob");
        match(await other.command("MAIL FROM:<bob@example.com>"), /^250 /);
        match(await other.command("RCPT TO:<x@example.org>"), /^250 /);
      });
    } finally {
      await server.stop();
      await removeTestFiles(server);
    }
  },
);
