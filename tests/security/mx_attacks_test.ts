/**
 * Attacks on the public MX port of the real `serve` process (SECURITY.md): SMTP smuggling, the
 * open-relay matrix, oversized lines, recipient floods, oversized messages, slowloris and
 * connection floods. Each attack must end in a clear reply, never a crash, hang or a queued
 * message it should not have produced.
 */
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { queueList } from "../_helpers/server_process.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { greeted, RawClient, rssKib } from "./_raw.ts";
import { withServe } from "./_serve.ts";
import { startReady } from "../smtp/_session.ts";
import type { Client } from "../smtp/_session.ts";
import { dataDeadlineMs, MIN_DATA_DEADLINE_MS } from "../../src/smtp/receiver.ts";
import { SMUGGLED_ENDS } from "../_helpers/smuggled_ends.ts";

const MAX_RECIPIENTS = 50;
const MAX_MESSAGE_BYTES = 64 * 1024;

type Listed = { from: string; recipients: { address: string }[] }[];

function withMx(
  fn: (server: ServerProcess, port: number) => Promise<void>,
  smtp: Record<string, unknown> = {},
): Promise<void> {
  const config = {
    smtp: {
      timeout: "2s",
      max_recipients: MAX_RECIPIENTS,
      max_message_size: MAX_MESSAGE_BYTES,
      ...smtp,
    },
  };
  return withServe(
    config,
    (server) => fn(server, server.smtp[0]!.port), // startServer waited for an smtp listener
    { users: [{ name: "alice", domains: ["example.org"] }] },
  );
}

/** Connects, reads the greeting and says EHLO. */
function ready(port: number, localAddress?: string): Promise<RawClient> {
  return greeted(port, localAddress, "attacker.test");
}

Deno.test("MX: smuggled end-of-data with a second envelope queues nothing (550 5.5.2, close)", async (t) => {
  // SEC Consult 2023 variants (docs/protocol.md §6.5) plus NUL/bare-CR-before-dot combinations.
  const variants = [...SMUGGLED_ENDS, "\r\n\r.\r\n", "\r\n.\r\r\n"];
  await withMx(async (server, port) => {
    for (const v of variants) {
      await t.step(JSON.stringify(v), async () => {
        using c = await ready(port);
        assertMatch(await c.command("MAIL FROM:<legit@sender.test>"), /^250 /);
        assertMatch(await c.command("RCPT TO:<victim@example.org>"), /^250 /);
        assertMatch(await c.command("DATA"), /^354 /);
        await c.write(
          `Subject: first\r\n\r\nhello${v}MAIL FROM:<ceo@smuggled.test>\r\n` +
            "RCPT TO:<smuggled@example.org>\r\nDATA\r\nSubject: forged\r\n\r\nforged\r\n.\r\n",
        );
        assertEquals(await c.reply(), "550 5.5.2 Bare CR or LF not allowed");
        assert(await c.waitClosed(5_000), "the server closes after a bare CR/LF in DATA");
      });
    }
    await t.step(
      "a NUL before the dot is body, not an end: one message, no forged one",
      async () => {
        using c = await ready(port);
        assertMatch(await c.command("MAIL FROM:<legit@sender.test>"), /^250 /);
        assertMatch(await c.command("RCPT TO:<nul@example.org>"), /^250 /);
        assertMatch(await c.command("DATA"), /^354 /);
        await c.write(
          "Subject: nul\r\n\r\nhello\r\n\0.\r\nMAIL FROM:<ceo@smuggled.test>\r\n" +
            "RCPT TO:<smuggled@example.org>\r\nDATA\r\nforged\r\n.\r\n",
        );
        assertMatch(await c.reply(), /^250 /);
        assertMatch(await c.command("QUIT"), /^221 /);
      },
    );
    const queued = await queueList(server.configPath) as Listed;
    assertEquals(queued.map((m) => m.from), ["legit@sender.test"]);
    assertEquals(queued[0]?.recipients.map((r) => r.address), ["nul@example.org"]);
  });
});

/** RCPT forms that name a mailbox outside the owned domain (or no valid mailbox at all). */
const RELAY_FORMS: { rcpt: string; why: string }[] = [
  { rcpt: "<user@other.test>", why: "another domain" },
  { rcpt: "<USER@OTHER.TEST>", why: "another domain, upper case" },
  { rcpt: "<user@other.test.>", why: "another domain with a trailing dot" },
  { rcpt: "<user@example.org.other.test>", why: "owned domain as a prefix label" },
  { rcpt: "<user@sub.example.org>", why: "a child of the owned domain" },
  { rcpt: "<user@org>", why: "the parent of the owned domain" },
  { rcpt: "<user@xample.org>", why: "a suffix of the owned domain" },
  { rcpt: "<user%other.test@example.org>", why: "%-hack through the owned domain" },
  { rcpt: "<other.test!user@example.org>", why: "!-path through the owned domain" },
  { rcpt: "<@example.org:user@other.test>", why: "source route via the owned domain" },
  { rcpt: "<@example.org,@example.org:user@other.test>", why: "two-hop source route" },
  { rcpt: '<"user@other.test"@example.org>', why: "quoted local part containing @" },
  { rcpt: '<"user%other.test"@example.org>', why: "quoted local part containing %" },
  { rcpt: "<user@example.org@other.test>", why: "two @" },
  { rcpt: "<user@[127.0.0.1]>", why: "IPv4 address literal" },
  { rcpt: "<user@[IPv6:::1]>", why: "IPv6 address literal" },
  { rcpt: "<user@bücher.test>", why: "IDN U-label of another domain" },
  { rcpt: "<user@xn--bcher-kva.test>", why: "IDN A-label of another domain" },
  { rcpt: `<${"a".repeat(65)}@example.org>`, why: "local part over 64 octets" },
  { rcpt: `<${"a".repeat(300)}@other.test>`, why: "very long local part, other domain" },
  { rcpt: "<user@other.test\u0001>", why: "control byte" },
  { rcpt: "<user@localhost>", why: "localhost" },
  { rcpt: "<postmaster@other.test>", why: "postmaster of another domain" },
  { rcpt: "user@other.test", why: "without angle brackets" },
  { rcpt: "<user@other.test> NOTIFY=NEVER", why: "with a parameter" },
];

Deno.test("MX: the open-relay matrix accepts no foreign recipient", async (t) => {
  await withMx(async (server, port) => {
    const c = await ready(port);
    try {
      assertMatch(await c.command("MAIL FROM:<spammer@sender.test>"), /^250 /);
      for (const form of RELAY_FORMS) {
        await t.step(`${form.why}: RCPT TO:${form.rcpt}`, async () => {
          const r = await c.command(`RCPT TO:${form.rcpt}`);
          assertMatch(r, /^5\d\d /, `${form.rcpt} must be refused permanently: ${r}`);
          // RSET keeps the error counter from ending the session between forms.
          assertMatch(await c.command("RSET"), /^250 /);
          assertMatch(await c.command("MAIL FROM:<spammer@sender.test>"), /^250 /);
        });
      }
      await t.step("NUL in the address: refused, session goes on", async () => {
        assertMatch(await c.command("RCPT TO:<user@other.test\0>"), /^50\d /);
      });
      await t.step("control: the owned domain in any case and with a trailing dot", async () => {
        assertMatch(await c.command("RSET"), /^250 /);
        assertMatch(await c.command("MAIL FROM:<s@sender.test>"), /^250 /);
        assertMatch(await c.command("RCPT TO:<Ok@EXAMPLE.Org>"), /^250 /);
      });
    } finally {
      c.close();
    }
    assertEquals(await queueList(server.configPath), []);
  });
});

Deno.test("MX: resource abuse on one session ends in clear replies and the process stays healthy", async (t) => {
  await withMx(async (server, port) => {
    await t.step("a 100 KB command line gets 500 5.5.2 and the session goes on", async () => {
      using c = await ready(port);
      assertEquals(await c.command(`NOOP ${"x".repeat(100 * 1024)}`), "500 5.5.2 Line too long");
      assertMatch(await c.command("NOOP"), /^250 /);
    });
    await t.step(
      "10,000 RCPTs: the limit gets 250, the rest 452 4.5.3; memory stays bounded",
      async () => {
        const before = await rssKib(server.pid);
        const c = await ready(port);
        try {
          assertMatch(await c.command("MAIL FROM:<flood@sender.test>"), /^250 /);
          const replies: string[] = [];
          const BATCH = 500;
          for (let i = 0; i < 10_000 && !c.isClosed; i += BATCH) {
            let group = "";
            for (let j = i; j < i + BATCH; j++) group += `RCPT TO:<r${j}@example.org>\r\n`;
            await c.write(group);
            for (let j = 0; j < BATCH; j++) {
              const r = await c.reply();
              if (r === "") break;
              replies.push(r);
            }
          }
          const ok = replies.filter((r) => r.startsWith("250"));
          assertEquals(ok.length, MAX_RECIPIENTS);
          assertEquals(replies[MAX_RECIPIENTS], "452 4.5.3 Too many recipients");
          const rest = replies.slice(MAX_RECIPIENTS);
          assert(
            rest.every((r) => r === "452 4.5.3 Too many recipients" || /^421 4\.7\.0/.test(r)),
            `after the limit only 452 (or a final 421): ${[...new Set(rest)].join(" | ")}`,
          );
        } finally {
          c.close();
        }
        const after = await rssKib(server.pid);
        if (before !== undefined && after !== undefined) {
          assert(after - before < 64 * 1024, `RSS grew by ${after - before} KiB`);
        }
      },
    );
    await t.step("a message over the size limit is read to its end, then 552 5.3.4", async () => {
      using c = await ready(port);
      assertMatch(await c.command("MAIL FROM:<big@sender.test>"), /^250 /);
      assertMatch(await c.command("RCPT TO:<big@example.org>"), /^250 /);
      assertMatch(await c.command("DATA"), /^354 /);
      const line = `${"y".repeat(998)}\r\n`;
      await c.write(`Subject: big\r\n\r\n${line.repeat(100)}.\r\n`);
      assertEquals(
        await c.reply(),
        "552 5.3.4 Message size exceeds fixed maximum message size",
      );
      assertMatch(await c.command("NOOP"), /^250 /, "still in sync after the refusal");
    });
    await t.step("SIZE= over the limit at MAIL is refused before any data", async () => {
      using c = await ready(port);
      assertMatch(
        await c.command(`MAIL FROM:<big@sender.test> SIZE=${MAX_MESSAGE_BYTES + 1}`),
        /^552 /,
      );
    });
    assertEquals(await queueList(server.configPath), []);
  });
});

Deno.test("MX: slowloris — an idle client and a byte-a-second command both get 421 4.4.2", async (t) => {
  await withMx(async (_server, port) => {
    await t.step("idle after EHLO", async () => {
      using c = await ready(port);
      const started = Date.now();
      assertEquals(await c.reply(6_000), "421 4.4.2 Idle timeout, closing connection");
      assert(Date.now() - started < 5_000);
      assert(await c.waitClosed(2_000));
    });
    await t.step("a command trickled one byte every 400 ms never completes", async () => {
      using c = await ready(port);
      const started = Date.now();
      const line = "MAIL FROM:<slow@sender.test>\r\n";
      for (let i = 0; i < line.length && !c.isClosed && Date.now() - started < 8_000; i++) {
        await c.write(line[i] as string);
        await new Promise((r) => setTimeout(r, 400));
      }
      assertEquals(await c.reply(2_000), "421 4.4.2 Idle timeout, closing connection");
      assert(Date.now() - started < 6_000, "the whole line had one command timeout (2s)");
    });
  });
});

Deno.test("MX: connection floods, total and per IP, get 421 4.7.0", async () => {
  await withMx(async (_server, port) => {
    const open: RawClient[] = [];
    try {
      // Per IP: 2 from 127.0.0.1, the third is refused.
      for (let i = 0; i < 2; i++) open.push(await ready(port, "127.0.0.1"));
      const third = await RawClient.connect(port, "127.0.0.1");
      open.push(third);
      assertMatch(await third.reply(), /^421 4\.7\.0 /);
      assert(await third.waitClosed(2_000));
      // Total: 2 more from 127.0.0.2 make 4; a fifth from 127.0.0.3 is refused.
      for (let i = 0; i < 2; i++) open.push(await ready(port, "127.0.0.2"));
      const fifth = await RawClient.connect(port, "127.0.0.3");
      open.push(fifth);
      assertMatch(await fifth.reply(), /^421 4\.7\.0 /);
      // A flood of 200 short connections from one more address: each gets 220 or 421, none hang.
      const flood = await Promise.all(
        Array.from({ length: 200 }, () => RawClient.connect(port, "127.0.0.4")),
      );
      open.push(...flood);
      const greetings = await Promise.all(flood.map((c) => c.reply(10_000)));
      assert(greetings.every((g) => /^421 4\.7\.0 /.test(g)), "the total limit holds");
      for (const c of open) c.close();
      open.length = 0;
      // Slots come back once the clients are gone.
      for (let i = 0; i < 50; i++) {
        const c = await RawClient.connect(port, "127.0.0.5");
        const g = await c.reply();
        c.close();
        if (g.startsWith("220")) return;
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error("the server did not free its connection slots");
    } finally {
      for (const c of open) c.close();
    }
  }, { max_connections: 4, max_connections_per_ip: 2 });
});

/** Writes `bytes` one byte every `everyMs` until `isDone()` (bounded by the length). */
async function trickle(
  client: Client,
  bytes: string,
  everyMs: number,
  isDone: () => boolean,
): Promise<void> {
  for (let i = 0; i < bytes.length && !isDone(); i++) {
    await client.send(bytes[i] as string).catch(() => {});
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

Deno.test("MX: a body trickled under the per-read timeout hits the total DATA deadline (421 4.4.2, nothing stored)", async (t) => {
  // In process (tests/smtp/_session.ts): per read 1 s, the whole body 400 ms; a byte every 50 ms
  // never trips the per-read timeout, so only the total deadline can end it.
  const options = { dataTimeoutMs: 1_000, dataDeadlineMs: 400 };
  const body = `Subject: slow\r\n\r\n${"x".repeat(200)}\r\n.\r\n`;
  await t.step("DATA", async () => {
    const s = await startReady({ options });
    let isDone = false;
    try {
      assertMatch(await s.client.command("MAIL FROM:<slow@sender.test>"), /^250 /);
      assertMatch(await s.client.command("RCPT TO:<victim@example.org>"), /^250 /);
      assertMatch(await s.client.command("DATA"), /^354 /);
      const started = Date.now();
      const sending = trickle(s.client, body, 50, () => isDone);
      const r = await s.client.reply(3_000);
      isDone = true;
      await sending;
      assertEquals(r, "421 4.4.2 Message took too long, closing connection");
      assert(Date.now() - started < 1_500, "ended by the 400 ms deadline");
      assertEquals((await s.done).reason, "timeout");
      assertEquals(s.sink.transactions.map((x) => [x.finished, x.aborted]), [[false, 1]]);
    } finally {
      isDone = true;
      await s.end();
    }
  });
  await t.step("one BDAT chunk", async () => {
    const s = await startReady({ options });
    let isDone = false;
    try {
      assertMatch(await s.client.command("MAIL FROM:<slow@sender.test>"), /^250 /);
      assertMatch(await s.client.command("RCPT TO:<victim@example.org>"), /^250 /);
      await s.client.send("BDAT 200 LAST\r\n");
      const sending = trickle(s.client, "y".repeat(200), 50, () => isDone);
      const r = await s.client.reply(3_000);
      isDone = true;
      await sending;
      assertEquals(r, "421 4.4.2 Message took too long, closing connection");
      assertEquals((await s.done).reason, "timeout");
      assertEquals(s.sink.transactions.map((x) => [x.finished, x.aborted]), [[false, 1]]);
    } finally {
      isDone = true;
      await s.end();
    }
  });
  await t.step("control: a body sent at once under the same limits is accepted", async () => {
    const s = await startReady({ options });
    try {
      assertMatch(await s.client.command("MAIL FROM:<fast@sender.test>"), /^250 /);
      assertMatch(await s.client.command("RCPT TO:<victim@example.org>"), /^250 /);
      assertMatch(await s.client.command("DATA"), /^354 /);
      assertMatch(await s.client.command(body.slice(0, -2)), /^250 /);
      assertEquals(s.sink.accepted.length, 1);
    } finally {
      await s.end();
    }
  });
  await t.step("the default deadline: 10 min floor, else max_message_size at 10 KB/s", () => {
    assertEquals(dataDeadlineMs(64 * 1024), MIN_DATA_DEADLINE_MS);
    assertEquals(dataDeadlineMs(50 * 1024 * 1024), 5_120_000);
  });
});
