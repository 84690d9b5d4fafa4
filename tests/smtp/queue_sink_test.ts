import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import {
  decideRecipient,
  isStorageFull,
  QueueSink,
  type QueueSinkOptions,
} from "../../src/smtp/sinks/queue_sink.ts";
import type { MessageWriter, NewMessage, QueueStore } from "../../src/queue/types.ts";
import type { SinkTransaction } from "../../src/smtp/sink.ts";
import { parseRcptArgument } from "../../src/wire/address.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { startReady } from "./_session.ts";
import { sessionInfo } from "../_helpers/session_info.ts";

/** A QueueStore holding messages in memory; can fail at begin, write or commit. */
class MemoryStore {
  readonly begun: { message: NewMessage; body: number[]; committed: boolean; aborted: boolean }[] =
    [];
  failAt: "begin" | "write" | "commit" | undefined;
  failWith: unknown = new Error("boom");
  #n = 0;

  newId(): Promise<string> {
    return Promise.resolve(`Q${++this.#n}`);
  }

  begin(message: NewMessage): Promise<MessageWriter> {
    if (this.failAt === "begin") return Promise.reject(this.failWith);
    const rec = { message, body: [] as number[], committed: false, aborted: false };
    this.begun.push(rec);
    const fail = () => this.failAt;
    const failWith = () => this.failWith;
    return Promise.resolve({
      id: message.id ?? "?",
      write(chunk) {
        if (fail() === "write") return Promise.reject(failWith());
        rec.body.push(...chunk);
        return Promise.resolve();
      },
      commit() {
        if (fail() === "commit") return Promise.reject(failWith());
        rec.committed = true;
        return Promise.resolve();
      },
      abort() {
        rec.aborted = true;
        return Promise.resolve();
      },
    });
  }
}

function asStore(m: MemoryStore): QueueStore {
  const notUsed = () => {
    throw new Error("not used by QueueSink");
  };
  return {
    newId: () => m.newId(),
    begin: (msg) => m.begin(msg),
    claim: notUsed,
    claimOutbound: notUsed,
    nextOutboundAt: notUsed,
    holdForAtrn: notUsed,
    list: notUsed,
    get: notUsed,
    readBody: notUsed,
    delete: notUsed,
    deleteDomain: notUsed,
    releaseAllLeases: notUsed,
    usage: notUsed,
    domainStats: notUsed,
    reportDecided: notUsed,
    maintain: notUsed,
    ping: notUsed,
    close: () => Promise.resolve(),
  };
}

const SESSION = sessionInfo({ sessionId: "s1", remoteAddress: "192.0.2.1", heloName: "c.test" });

const LOCAL = new Set(["local.test", "xn--bcher-kva.test"]);
const isLocalDomain = (d: string) => LOCAL.has(d);

/** The recipient `TO:<path>` names, as the receiver hands it to the sink; undefined: bad syntax. */
function recipientOf(path: string): { address: string; domain: string } | undefined {
  const parsed = parseRcptArgument(`TO:${path}`);
  return parsed.ok ? { address: parsed.mailbox.address, domain: parsed.mailbox.domain } : undefined;
}

Deno.test("QueueSink accepts only local domains, whatever the address tricks", async (t) => {
  const rows: { path: string; want: "accept" | "reject" | "syntax"; why: string }[] = [
    { path: "<user@local.test>", want: "accept", why: "a local domain" },
    { path: "<User@LOCAL.TEST>", want: "accept", why: "domains are case-insensitive" },
    { path: "<user@local.test.>", want: "accept", why: "one trailing dot is stripped" },
    { path: "<postmaster@local.test>", want: "accept", why: "postmaster of a local domain" },
    { path: "<user@evil.test>", want: "reject", why: "a foreign domain" },
    { path: "<user@local.test.evil.test>", want: "reject", why: "local name as a prefix" },
    { path: "<user@sub.local.test>", want: "reject", why: "a subdomain is not owned" },
    { path: "<@local.test:user@evil.test>", want: "reject", why: "source route to a foreign box" },
    { path: "<@evil.test,@x.test:user@local.test>", want: "accept", why: "route dropped" },
    { path: "<user%evil.test@local.test>", want: "reject", why: "percent hack" },
    { path: "<evil.test!user@local.test>", want: "reject", why: "bang path" },
    { path: '<"user@evil.test"@local.test>', want: "reject", why: "quoted @" },
    { path: '<"user"@local.test>', want: "accept", why: "plain quoted local part" },
    { path: "<user@[127.0.0.1]>", want: "reject", why: "IPv4 literal" },
    { path: "<user@[IPv6:::1]>", want: "reject", why: "IPv6 literal" },
    { path: "<user@local.test@evil.test>", want: "syntax", why: "two @" },
    { path: "<user@evil.test,local.test>", want: "syntax", why: "comma list" },
    { path: "<Postmaster>", want: "reject", why: "bare postmaster without postmasterDomain" },
    { path: "<user@127.0.0.1>", want: "syntax", why: "an IP without brackets" },
  ];
  for (const row of rows) {
    await t.step(`${row.path}: ${row.why}`, () => {
      const rcpt = recipientOf(row.path);
      if (row.want === "syntax") {
        assertEquals(rcpt, undefined);
        return;
      }
      assert(rcpt !== undefined);
      const decided = decideRecipient(rcpt, { isLocalDomain });
      assertEquals(decided.ok, row.want === "accept");
      if (decided.ok) assert(LOCAL.has(decided.recipient.domain));
    });
  }
  await t.step("IDN domains compare as A-labels", () => {
    const rcpt = recipientOf("<user@BÜCHER.test>");
    assert(rcpt !== undefined);
    const decided = decideRecipient(rcpt, { isLocalDomain });
    assert(decided.ok);
    assertEquals(decided.recipient.domain, "xn--bcher-kva.test");
  });
  await t.step("the bare <Postmaster> goes to postmasterDomain when set", () => {
    const decided = decideRecipient({ address: "Postmaster", domain: "" }, {
      isLocalDomain,
      postmasterDomain: "local.test",
    });
    assertEquals(decided, {
      ok: true,
      recipient: { address: "postmaster@local.test", domain: "local.test" },
    });
  });
});

Deno.test("decideRecipient with deliverForeign (submission): foreign on route mx, tricks still refused", async (t) => {
  const rows: { path: string; want: "atrn" | "mx" | "reject"; why: string }[] = [
    { path: "<user@local.test>", want: "atrn", why: "our domain stays on the ATRN queue" },
    { path: "<user@evil.test>", want: "mx", why: "a foreign domain goes to its MX" },
    { path: "<user@sub.local.test>", want: "mx", why: "a subdomain we do not own is foreign" },
    { path: "<@local.test:user@evil.test>", want: "mx", why: "the route is dropped (RFC 5321 §C)" },
    { path: "<user%evil.test@local.test>", want: "reject", why: "percent hack" },
    { path: "<evil.test!user@local.test>", want: "reject", why: "bang path" },
    { path: '<"user@evil.test"@local.test>', want: "reject", why: "quoted @" },
    { path: "<user%other.test@evil.test>", want: "reject", why: "percent hack to a foreign host" },
    { path: "<user@[127.0.0.1]>", want: "reject", why: "IPv4 literal" },
    { path: "<user@[IPv6:::1]>", want: "reject", why: "IPv6 literal" },
    { path: "<Postmaster>", want: "reject", why: "bare postmaster without postmasterDomain" },
  ];
  for (const row of rows) {
    await t.step(`${row.path}: ${row.why}`, () => {
      const rcpt = recipientOf(row.path);
      assert(rcpt !== undefined);
      const decided = decideRecipient(rcpt, { isLocalDomain, deliverForeign: true });
      if (row.want === "reject") {
        assertEquals(decided.ok, false);
        return;
      }
      assert(decided.ok);
      assertEquals(decided.recipient.route ?? "atrn", row.want);
      // Without the option (the MX port) the same foreign recipient is refused as relaying.
      if (row.want === "mx") {
        assertEquals(decideRecipient(rcpt, { isLocalDomain }), { ok: false, reason: "relay" });
      }
    });
  }
});

/** The submission port's QueueSink (deliverForeign, 5 recipients) on `store`, plus `extra`. */
function submissionSink(store: MemoryStore, extra: Partial<QueueSinkOptions> = {}): QueueSink {
  return new QueueSink({
    store: asStore(store),
    isLocalDomain,
    log: NULL_LOGGER,
    maxRecipients: 5,
    deliverForeign: true,
    ...extra,
  });
}

/** One message from a@local.test to `to` through `sink`: every RCPT and the data get 250. */
async function send(sink: QueueSink, to: readonly string[]): Promise<void> {
  const tx = await sink.begin({ address: "a@local.test", params: {} }, SESSION);
  assert("addRecipient" in tx);
  for (const a of to) {
    assertEquals((await tx.addRecipient({ address: a, domain: a.split("@")[1] ?? "" })).code, 250);
  }
  await tx.write(new TextEncoder().encode("x\r\n"));
  assertEquals((await tx.finish()).code, 250);
}

Deno.test("QueueSink with deliverForeign: the worker is woken after a commit with an mx recipient only", async () => {
  const store = new MemoryStore();
  let wakes = 0;
  const quotaAsked: string[] = [];
  const sink = submissionSink(store, {
    onOutboundQueued: () => wakes++,
    quotaOf: (d) => {
      quotaAsked.push(d);
      return undefined;
    },
  });
  await send(sink, ["b@local.test"]);
  assertEquals(wakes, 0);
  await send(sink, ["b@local.test", "c@evil.test"]);
  assertEquals(wakes, 1);
  assertEquals(store.begun[1]?.message.recipients.map((r) => [r.address, r.route]), [
    ["b@local.test", undefined],
    ["c@evil.test", "mx"],
  ]);
  // Quotas bound what a customer collects: never asked for a foreign destination.
  assert(!quotaAsked.includes("evil.test"), quotaAsked.join(","));
  assert(quotaAsked.includes("local.test"));
});

Deno.test("QueueSink with deliverForeign reports foreign destinations as domain other (bounded metric labels)", async () => {
  const queued: (readonly string[])[] = [];
  const sink = submissionSink(new MemoryStore(), {
    events: {
      messageQueued: (e) => queued.push(e.domains),
      rcptRejected: () => {},
      messageRefused: () => {},
    },
  });
  // Each message to a new foreign domain would add a series to messages_received_total forever.
  await send(sink, ["c@evil.test"]);
  await send(sink, ["b@local.test", "d@one.test", "e@two.test"]);
  assertEquals(queued, [["other"], ["local.test", "other"]]);
});

async function openTx(store: MemoryStore, domains = LOCAL): Promise<SinkTransaction> {
  const sink = new QueueSink({
    store: asStore(store),
    isLocalDomain: (d) => domains.has(d),
    log: NULL_LOGGER,
    maxRecipients: 2,
  });
  const tx = await sink.begin({ address: "a@b.test", params: { body: "8BITMIME" } }, SESSION);
  assert("addRecipient" in tx);
  return tx;
}

Deno.test("QueueSink writes the message at the first body bytes and replies 250 after commit", async () => {
  const store = new MemoryStore();
  const tx = await openTx(store);
  assertEquals(tx.id, "Q1");
  assertEquals(
    (await tx.addRecipient({ address: "x@local.test", domain: "local.test", notify: "NEVER" }))
      .code,
    250,
  );
  assertEquals((await tx.addRecipient({ address: "x@evil.test", domain: "evil.test" })).lines, [
    "Relaying denied",
  ]);
  assertEquals(store.begun.length, 0);
  await tx.write(new TextEncoder().encode("hello\r\n"));
  const r = await tx.finish();
  assertEquals(r, { code: 250, enhanced: "2.6.0", lines: ["Message accepted for delivery as Q1"] });
  assertEquals(store.begun[0]?.message, {
    id: "Q1",
    mailFrom: "a@b.test",
    params: { body: "8BITMIME" },
    recipients: [{ address: "x@local.test", domain: "local.test", notify: "NEVER" }],
  });
  assertEquals(store.begun[0]?.committed, true);
  await tx.abort();
  assertEquals(store.begun[0]?.aborted, false);
});

Deno.test("QueueSink asks isLocalDomain on every RCPT (no caching)", async () => {
  const domains = new Set<string>();
  const tx = await openTx(new MemoryStore(), domains);
  assertEquals((await tx.addRecipient({ address: "x@new.test", domain: "new.test" })).code, 550);
  domains.add("new.test");
  assertEquals((await tx.addRecipient({ address: "x@new.test", domain: "new.test" })).code, 250);
});

Deno.test("QueueSink refuses recipients over maxRecipients with 452 4.5.3", async () => {
  const tx = await openTx(new MemoryStore());
  for (let i = 0; i < 2; i++) {
    assertEquals(
      (await tx.addRecipient({ address: `${i}@local.test`, domain: "local.test" })).code,
      250,
    );
  }
  const r = await tx.addRecipient({ address: "3@local.test", domain: "local.test" });
  assertEquals([r.code, r.enhanced], [452, "4.5.3"]);
});

Deno.test("QueueSink maps store failures to 451 4.3.0, and a full disk (SQLite or PostgreSQL) to 452 4.3.1", async (t) => {
  const full = Object.assign(new Error("database or disk is full"), { errcode: 13 });
  // PostgreSQL's disk_full, as postgres.js's PostgresError carries it.
  const pgFull = Object.assign(new Error("could not extend file"), { code: "53100" });
  const cases = [[new Error("x"), [451, "4.3.0"]], [full, [452, "4.3.1"]], [pgFull, [
    452,
    "4.3.1",
  ]]] as const;
  for (const failAt of ["begin", "write", "commit"] as const) {
    for (const [err, want] of cases) {
      await t.step(`${failAt}: ${err.message}`, async () => {
        const store = new MemoryStore();
        store.failAt = failAt;
        store.failWith = err;
        const tx = await openTx(store);
        await tx.addRecipient({ address: "x@local.test", domain: "local.test" });
        await tx.write(new Uint8Array([65]));
        const r = await tx.finish();
        assertEquals([r.code, r.enhanced], want);
        if (failAt !== "begin") assertEquals(store.begun[0]?.aborted, true);
      });
    }
  }
  assert(isStorageFull({ code: "ENOSPC" }));
  assert(!isStorageFull(new Error("constraint failed")));
  // PostgreSQL: disk_full is; out of memory (53200) and too many connections (53300) are not.
  assert(isStorageFull(Object.assign(new Error("could not extend file"), { code: "53100" })));
  assert(!isStorageFull(Object.assign(new Error("out of memory"), { code: "53200" })));
  assert(!isStorageFull(Object.assign(new Error("too many connections"), { code: "53300" })));
});

Deno.test("QueueSink behind SmtpReceiver: relaying refused, local mail queued", async () => {
  const store = new MemoryStore();
  const sink = new QueueSink({
    store: asStore(store),
    isLocalDomain,
    log: NULL_LOGGER,
    maxRecipients: 10,
  });
  const s = await startReady({ otherSink: sink });
  await s.client.send(
    "MAIL FROM:<a@b.test>\r\nRCPT TO:<v@evil.test>\r\nRCPT TO:<v@local.test>\r\nDATA\r\n",
  );
  assertEquals(await s.client.replies(4), [
    "250 2.1.0 Sender OK",
    "550 5.7.1 Relaying denied",
    "250 2.1.5 Recipient OK",
    "354 Start mail input; end with <CRLF>.<CRLF>",
  ]);
  await s.client.send("hi\r\n.\r\n");
  assertEquals(await s.client.reply(), "250 2.6.0 Message accepted for delivery as Q1");
  assertEquals(store.begun[0]?.message.recipients.map((r) => r.domain), ["local.test"]);
  assertEquals(String.fromCharCode(...store.begun[0]?.body ?? []), "hi\r\n");
  await s.end();
});
