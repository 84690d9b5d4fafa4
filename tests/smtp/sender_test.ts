import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  dec,
  enc,
  failingOnResend,
  finish,
  message,
  ready,
  setup,
  writtenText,
} from "./_sender_fixture.ts";

function outcomes(r: { recipients: readonly { outcome: string }[] }): string[] {
  return r.recipients.map((x) => x.outcome);
}

Deno.test("SmtpSender delivers bodies byte-exact after the receiver un-stuffs them", async (t) => {
  const rows: { name: string; body: Uint8Array; want: Uint8Array }[] = [
    {
      name: "lines starting with dots",
      body: enc.encode(".hidden\r\n..two\r\n.\r\nend\r\n"),
      want: enc.encode(".hidden\r\n..two\r\n.\r\nend\r\n"),
    },
    {
      name: "8-bit bytes",
      body: new Uint8Array([0xc3, 0xa9, 0xff, 0x80, 13, 10, 0xfe, 13, 10]),
      want: new Uint8Array([0xc3, 0xa9, 0xff, 0x80, 13, 10, 0xfe, 13, 10]),
    },
    {
      name: "a body not ending in CRLF gets one",
      body: enc.encode("no newline at end"),
      want: enc.encode("no newline at end\r\n"),
    },
    { name: "an empty body", body: new Uint8Array(0), want: new Uint8Array(0) },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const f = setup();
      await ready(f);
      const result = await f.sender.send(
        message({ body: row.body, params: { body: "8BITMIME" }, size: row.body.length }),
      );
      assertEquals(outcomes(result), ["delivered"]);
      assertEquals(result.connectionLost, false);
      assertEquals(result.recipients[0]?.reply.code, 250);
      await finish(f);
      assertEquals(f.server.bodies, [row.want]);
      assertEquals(f.server.bodyFaults, []);
    });
  }
});

Deno.test("SmtpSender streams a 5 MB body in 64 KiB chunks without gathering it", async () => {
  const f = setup();
  await ready(f);
  const CHUNK = 64 * 1024;
  const TOTAL = 5 * 1024 * 1024;
  // 64-byte lines, every fourth one starting with a dot.
  const line = (n: number) =>
    enc.encode((n % 4 === 0 ? "." : "x") + String(n % 10).repeat(61) + "\r\n");
  const expected: Uint8Array[] = [];
  let reads = 0;
  // Read twice: once by the check before MAIL (too big to keep), once to send.
  async function* body(): AsyncGenerator<Uint8Array> {
    const pass = ++reads;
    let n = 0;
    let yielded = 0;
    while (yielded < TOTAL) {
      const chunk = new Uint8Array(CHUNK);
      for (let at = 0; at < CHUNK; at += 64) chunk.set(line(n++), at);
      if (pass === 2) {
        // Streaming: everything yielded before this chunk is on the wire already.
        const onWire = f.client.written.reduce((s, c) => s + c.length, 0) - before;
        assert(
          onWire >= yielded,
          `only ${onWire} of ${yielded} bytes written before the next chunk`,
        );
        expected.push(chunk);
      }
      yielded += CHUNK;
      await Promise.resolve();
      yield chunk;
    }
  }
  const before = f.client.written.reduce((s, c) => s + c.length, 0);
  const writesBefore = f.client.written.length;
  const result = await f.sender.send(message({ body, size: TOTAL }));
  assertEquals(outcomes(result), ["delivered"]);
  assertEquals(reads, 2);
  const bodyWrites = f.client.written.slice(writesBefore + 1);
  for (const w of bodyWrites) {
    // A chunk plus its inserted dots (256 per chunk here), never more.
    assert(w.length <= CHUNK + 256, `a write of ${w.length} bytes`);
  }
  await finish(f);
  const got = f.server.bodies[0];
  assert(got !== undefined);
  assertEquals(got.length, TOTAL);
  assert(got.every((b, i) => b === expected[Math.floor(i / CHUNK)]?.[i % CHUNK]));
});

Deno.test("SmtpSender with PIPELINING sends MAIL, RCPTs and DATA in one write", async () => {
  const f = setup();
  await ready(f);
  const before = f.client.written.length;
  const result = await f.sender.send(message({ recipients: ["a@c.test", "b@c.test"] }));
  assertEquals(outcomes(result), ["delivered", "delivered"]);
  assertEquals(
    new TextDecoder().decode(f.client.written[before]),
    "MAIL FROM:<sender@remote.test> SIZE=22\r\nRCPT TO:<a@c.test>\r\nRCPT TO:<b@c.test>\r\nDATA\r\n",
  );
  // Then the body with the end marker in one write: nothing was sent before the 354.
  assertEquals(f.client.written.length, before + 2);
  assertEquals(dec.decode(f.client.written[before + 1]), "Subject: hi\r\n\r\nhello\r\n.\r\n");
  await finish(f);
});

Deno.test("SmtpSender without PIPELINING waits for each reply", async () => {
  const f = setup({ extensions: ["8BITMIME"] });
  await ready(f);
  const before = f.client.written.length;
  const result = await f.sender.send(message({ recipients: ["a@c.test", "b@c.test"] }));
  assertEquals(outcomes(result), ["delivered", "delivered"]);
  const writes = f.client.written.slice(before).map((c) => new TextDecoder().decode(c));
  assertEquals(writes.slice(0, 4), [
    "MAIL FROM:<sender@remote.test>\r\n",
    "RCPT TO:<a@c.test>\r\n",
    "RCPT TO:<b@c.test>\r\n",
    "DATA\r\n",
  ]);
  await finish(f);
});

Deno.test("SmtpSender settles each recipient by its RCPT reply (docs/protocol.md §4.8)", async (t) => {
  for (const pipelining of [true, false]) {
    await t.step(pipelining ? "pipelined" : "lock-step", async () => {
      const replies: Record<string, string> = {
        "ok@c.test": "250 2.1.5 OK",
        "later@c.test": "450 4.2.1 Try later",
        "gone@c.test": "550 5.1.1 No such user",
        "many@c.test": "552 5.5.3 Too many recipients",
      };
      const f = setup({
        extensions: pipelining ? ["PIPELINING"] : [],
        on: (cmd, verb) => verb === "RCPT" ? replies[/<(.*)>/.exec(cmd)?.[1] ?? ""] : undefined,
      });
      await ready(f);
      const result = await f.sender.send(message({ recipients: Object.keys(replies) }));
      assertEquals(outcomes(result), ["delivered", "deferred", "failed", "deferred"]);
      assertEquals(result.recipients.map((r) => r.id), [100, 101, 102, 103]);
      assertEquals(result.recipients[2]?.reply.enhanced, "5.1.1");
      assertEquals(result.recipients[3]?.reply.code, 552);
      assertEquals(result.connectionLost, false);
      await finish(f);
      assertEquals(f.server.bodies.length, 1);
    });
  }
});

Deno.test("SmtpSender sends no body when every RCPT is refused", async (t) => {
  await t.step("pipelined, DATA answered 354 anyway: just the end marker", async () => {
    const f = setup({ on: (_c, verb) => verb === "RCPT" ? "550 5.1.1 No" : undefined });
    await ready(f);
    const result = await f.sender.send(message({ recipients: ["a@c.test", "b@c.test"] }));
    assertEquals(outcomes(result), ["failed", "failed"]);
    await finish(f);
    assertEquals(f.server.bodies, [new Uint8Array(0)]);
    assertEquals(f.server.commands.at(-1), "QUIT");
  });
  await t.step("pipelined, DATA refused: RSET", async () => {
    const f = setup({
      on: (_c, verb) =>
        verb === "RCPT"
          ? "450 4.2.1 Later"
          : verb === "DATA"
          ? "554 5.5.1 No valid recipients"
          : undefined,
    });
    await ready(f);
    const result = await f.sender.send(message());
    assertEquals(outcomes(result), ["deferred"]);
    await finish(f);
    assertEquals(f.server.bodies, []);
    assertEquals(f.server.commands.slice(-2), ["RSET", "QUIT"]);
  });
  await t.step("lock-step: no DATA at all, RSET", async () => {
    const f = setup({
      extensions: [],
      on: (_c, verb) => verb === "RCPT" ? "550 5.1.1 No" : undefined,
    });
    await ready(f);
    const result = await f.sender.send(message());
    assertEquals(outcomes(result), ["failed"]);
    await finish(f);
    assert(!f.server.commands.includes("DATA"));
    assertEquals(f.server.commands.slice(-2), ["RSET", "QUIT"]);
  });
});

Deno.test("SmtpSender settles accepted recipients by the DATA replies", async (t) => {
  const rows = [
    { name: "DATA refused 451", on: "451 4.3.0 Not now", after: undefined, want: "deferred" },
    { name: "DATA refused 554", on: "554 5.7.1 Go away", after: undefined, want: "failed" },
    { name: "final reply 452", on: undefined, after: "452 4.3.1 Disk full", want: "deferred" },
    { name: "final reply 554", on: undefined, after: "554 5.6.0 Bad content", want: "failed" },
  ];
  for (const row of rows) {
    await t.step(row.name, async () => {
      const f = setup({
        on: (_c, verb) => verb === "DATA" ? row.on : undefined,
        afterData: () => row.after,
      });
      await ready(f);
      const result = await f.sender.send(message({ recipients: ["a@c.test", "b@c.test"] }));
      assertEquals(outcomes(result), [row.want, row.want]);
      assertEquals(result.connectionLost, false);
      // The session goes on: a second message still works.
      const again = await f.sender.send(message());
      assertEquals(result.recipients[0]?.reply.code, Number((row.on ?? row.after)?.slice(0, 3)));
      assertEquals(again.connectionLost, false);
      await finish(f);
      if (row.on !== undefined) assert(f.server.commands.includes("RSET"));
    });
  }
});

Deno.test("SmtpSender fails the whole message when MAIL is refused", async () => {
  const f = setup({
    on: (_c, verb) =>
      verb === "MAIL"
        ? "553 5.1.7 Bad sender"
        : verb === "RCPT" || verb === "DATA"
        ? "503 5.5.1 Need MAIL"
        : undefined,
  });
  await ready(f);
  const result = await f.sender.send(message({ recipients: ["a@c.test", "b@c.test"] }));
  assertEquals(outcomes(result), ["failed", "failed"]);
  assertEquals(result.recipients[0]?.reply.code, 553);
  // Still in step: the next command gets its own reply.
  await finish(f);
  assertEquals(f.server.commands.at(-1), "QUIT");
});

Deno.test("SmtpSender treats 421 as the end of the session", async () => {
  const f = setup({
    on: (cmd, verb) =>
      verb === "RCPT" && cmd.includes("b@")
        ? { reply: "421 4.3.2 Shutting down", close: true }
        : undefined,
  });
  await ready(f);
  const result = await f.sender.send(
    message({ recipients: ["a@c.test", "b@c.test", "c@c.test"] }),
  );
  assertEquals(outcomes(result), ["deferred", "deferred", "deferred"]);
  assertEquals(result.connectionLost, true);
  assertEquals(result.recipients[0]?.reply.code, 421);
  assert(f.sender.isConnectionLost);
  const later = await f.sender.send(message());
  assertEquals(outcomes(later), ["deferred"]);
  assertEquals(later.connectionLost, true);
  await finish(f);
  assertEquals(f.server.bodies, []);
});

Deno.test("SmtpSender defers everything when the connection ends mid-DATA", async () => {
  const f = setup({
    on: (_c, verb) => verb === "DATA" ? { reply: "354 Go", close: true } : undefined,
  });
  await ready(f);
  const result = await f.sender.send(message({ recipients: ["a@c.test", "b@c.test"] }));
  assertEquals(outcomes(result), ["deferred", "deferred"]);
  assertEquals(result.connectionLost, true);
  assertEquals(result.recipients[0]?.reply.enhanced, "4.4.2");
  await finish(f);
});

Deno.test("SmtpSender gives up on a silent peer after the configured timeout", async (t) => {
  await t.step("no reply to MAIL", async () => {
    const f = setup(
      // Lock-step, so that the silence is not covered by the replies to later commands.
      { extensions: [], on: (_c, verb) => verb === "MAIL" ? { silent: true } : undefined },
      { timeouts: { mailMs: 30, rcptMs: 30, dataInitMs: 30 } },
    );
    await ready(f);
    const result = await f.sender.send(message());
    assertEquals(outcomes(result), ["deferred"]);
    assertEquals(result.connectionLost, true);
    assertEquals(result.recipients[0]?.reply.lines, ["Timed out waiting for a reply"]);
    assert(f.client.closed);
    await finish(f);
  });
  await t.step("no reply after the end of data", async () => {
    const f = setup({ afterData: () => ({ silent: true }) }, { timeouts: { dataFinalMs: 30 } });
    await ready(f);
    const result = await f.sender.send(message());
    assertEquals(outcomes(result), ["deferred"]);
    assertEquals(result.connectionLost, true);
    await finish(f);
    // The peer got the whole message: a duplicate is possible, loss is not (docs/protocol.md §1.6).
    assertEquals(f.server.bodies.length, 1);
  });
  await t.step("no greeting", async () => {
    const f = setup({ greeting: null }, { timeouts: { greetingMs: 30 } });
    const greeting = await f.sender.greet();
    assertEquals(greeting.code, 421);
    assert(f.sender.isConnectionLost);
    await finish(f);
  });
});

Deno.test("SmtpSender refuses 8-bit and SMTPUTF8 mail the peer cannot take, without sending", async (t) => {
  await t.step("8BITMIME missing: 554 5.6.3", async () => {
    const f = setup({ extensions: ["PIPELINING"] });
    await ready(f);
    const before = f.client.written.length;
    const result = await f.sender.send(message({ params: { body: "8BITMIME" } }));
    assertEquals(outcomes(result), ["failed"]);
    assertEquals([result.recipients[0]?.reply.code, result.recipients[0]?.reply.enhanced], [
      554,
      "5.6.3",
    ]);
    assertEquals(f.client.written.length, before);
    await finish(f);
  });
  await t.step("SMTPUTF8 missing: 553 5.6.7", async () => {
    const f = setup();
    await ready(f);
    const before = f.client.written.length;
    const result = await f.sender.send(message({ recipients: ["jürgen@c.test"] }));
    assertEquals(outcomes(result), ["failed"]);
    assertEquals(result.recipients[0]?.reply.enhanced, "5.6.7");
    assertEquals(f.client.written.length, before);
    await finish(f);
  });
  await t.step("both offered: BODY=8BITMIME and SMTPUTF8 on MAIL", async () => {
    const f = setup({ extensions: ["8BITMIME", "SMTPUTF8", "PIPELINING"] });
    await ready(f);
    const result = await f.sender.send(
      message({ recipients: ["jürgen@c.test"], params: { body: "8BITMIME", smtputf8: true } }),
    );
    assertEquals(outcomes(result), ["delivered"]);
    await finish(f);
    assertEquals(
      f.server.commands.find((c) => c.startsWith("MAIL")),
      "MAIL FROM:<sender@remote.test> BODY=8BITMIME SMTPUTF8",
    );
  });
});

Deno.test("SmtpSender forwards DSN parameters only to a peer that offers DSN", async () => {
  const msg = message({ params: { ret: "HDRS", envid: "QQ314159" } });
  const withOrcpt = {
    ...msg,
    recipients: [{
      id: 1,
      address: "a@c.test",
      notify: "SUCCESS,FAILURE",
      orcpt: "rfc822;a@c.test",
    }],
  };
  const plain = setup({ extensions: [] });
  await ready(plain);
  await plain.sender.send(withOrcpt);
  await finish(plain);
  assertEquals(plain.server.commands.slice(1, 3), [
    "MAIL FROM:<sender@remote.test>",
    "RCPT TO:<a@c.test>",
  ]);

  const dsn = setup({ extensions: ["DSN"] });
  await ready(dsn);
  await dsn.sender.send({ ...withOrcpt, readBody: () => [enc.encode("x\r\n")] });
  await finish(dsn);
  assertEquals(dsn.server.commands.slice(1, 3), [
    "MAIL FROM:<sender@remote.test> RET=HDRS ENVID=QQ314159",
    "RCPT TO:<a@c.test> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;a@c.test",
  ]);
});

Deno.test("SmtpSender falls back to HELO when EHLO is refused", async () => {
  const f = setup({ on: (_c, verb) => verb === "EHLO" ? "502 5.5.1 Not implemented" : undefined });
  const caps = await ready(f);
  assertEquals(caps.isExtended, false);
  const result = await f.sender.send(message({ params: { body: "7BIT" } }));
  assertEquals(outcomes(result), ["delivered"]);
  await finish(f);
  assertEquals(f.server.commands.slice(0, 3), [
    "EHLO provider.test",
    "HELO provider.test",
    "MAIL FROM:<sender@remote.test>",
  ]);
});

Deno.test("SmtpSender with lineRecords writes exactly one line per write", async () => {
  const f = setup({}, { lineRecords: true });
  await ready(f);
  const body = enc.encode("Subject: x\r\n\r\n.dot\r\nno end");
  const result = await f.sender.send(
    message({
      recipients: ["a@c.test", "b@c.test"],
      body: [body.subarray(0, 7), body.subarray(7)],
    }),
  );
  assertEquals(outcomes(result), ["delivered", "delivered"]);
  await f.sender.quit();
  for (const chunk of f.client.written) {
    const text = new TextDecoder().decode(chunk);
    assert(text.endsWith("\r\n") && text.indexOf("\r\n") === text.length - 2, JSON.stringify(text));
  }
  assertEquals(writtenText(f.client).split("\r\n").length - 1, f.client.written.length);
  f.client.destroy();
  await f.server.done;
  assertEquals(f.server.bodies, [enc.encode("Subject: x\r\n\r\n.dot\r\nno end\r\n")]);
});

Deno.test("SmtpSender fails a message it cannot relay before MAIL and keeps the connection (#10)", async (t) => {
  const long = (n: number) => enc.encode("Subject: x\r\n\r\n" + "a".repeat(n) + "\r\n");
  const rows: {
    what: string;
    body: readonly Uint8Array[];
    params?: { body: "7BIT" };
    extensions?: readonly string[];
    want: string | undefined;
  }[] = [
    { what: "a bare LF", body: [enc.encode("ok\r\n"), enc.encode("bad\n.\r\n")], want: "5.6.0" },
    { what: "a bare CR", body: [enc.encode("ok\rbad\r\n")], want: "5.6.0" },
    { what: "a bare CR at the very end", body: [enc.encode("ok\r\nend\r")], want: "5.6.0" },
    {
      what: "a CRLF split between chunks is fine",
      body: [enc.encode("ok\r"), enc.encode("\nend\r\n")],
      want: undefined,
    },
    { what: "a line of 998 octets + CRLF (N) is sent", body: [long(998)], want: undefined },
    { what: "a line of 999 octets + CRLF (N+1) fails", body: [long(999)], want: "5.6.0" },
    {
      what: "undeclared 8-bit to a peer without 8BITMIME fails 5.6.3",
      body: [new Uint8Array([0x61, 0xe9, 13, 10])],
      extensions: ["PIPELINING"],
      want: "5.6.3",
    },
    {
      what: "undeclared 8-bit to a peer with 8BITMIME is sent as stored",
      body: [new Uint8Array([0x61, 0xe9, 13, 10])],
      want: undefined,
    },
    {
      what: "7BIT-declared 8-bit to a peer without 8BITMIME fails 5.6.3",
      body: [new Uint8Array([0x61, 0xe9, 13, 10])],
      params: { body: "7BIT" },
      extensions: ["PIPELINING"],
      want: "5.6.3",
    },
  ];
  for (const row of rows) {
    await t.step(row.what, async () => {
      const f = setup(row.extensions === undefined ? {} : { extensions: row.extensions });
      await ready(f);
      const bad = await f.sender.send(
        message({
          recipients: ["a@c.test", "b@c.test"],
          body: row.body,
          ...row.params && { params: row.params },
        }),
      );
      if (row.want === undefined) {
        assertEquals(outcomes(bad), ["delivered", "delivered"]);
      } else {
        assertEquals(outcomes(bad), ["failed", "failed"]);
        assertEquals(bad.recipients[0]?.reply.code, 554);
        assertEquals(bad.recipients[0]?.reply.enhanced, row.want);
        assertEquals(f.server.commands.filter((c) => c.startsWith("MAIL")), [], "no MAIL for it");
      }
      assertEquals(bad.connectionLost, false);
      // The session goes on: the next message is delivered on the same connection.
      const good = await f.sender.send(message());
      assertEquals(outcomes(good), ["delivered"]);
      await finish(f);
      assertEquals(f.server.bodies.length, row.want === undefined ? 2 : 1);
      assert(!writtenText(f.client).includes("bad"));
    });
  }
});

Deno.test("SmtpSender defers a message whose stored body cannot be read, without I/O, and goes on (#10)", async () => {
  const f = setup();
  await ready(f);
  async function* body(): AsyncGenerator<Uint8Array> {
    yield enc.encode("first line\r\n");
    await Promise.resolve();
    throw new Error("disk read failed");
  }
  const result = await f.sender.send(message({ body: body() }));
  assertEquals(outcomes(result), ["deferred"]);
  assertEquals(result.recipients[0]?.reply.code, 451);
  assertEquals(result.connectionLost, false);
  assertEquals(outcomes(await f.sender.send(message())), ["delivered"]);
  await finish(f);
  assertEquals(f.server.commands.filter((c) => c.startsWith("MAIL")).length, 1);
});

Deno.test("SmtpSender defers and drops the connection when the body source fails mid-body", async () => {
  const f = setup();
  await ready(f);
  const result = await f.sender.send(message({ body: failingOnResend() }));
  assertEquals(outcomes(result), ["deferred"]);
  assertEquals(result.connectionLost, true);
  await finish(f);
  assertEquals(f.server.bodies, []);
});

Deno.test("SmtpSender.sendMany() runs messages in order and stops at a lost connection", async () => {
  const f = setup({
    afterData: (_b, view) =>
      view.mailCount === 2 ? { reply: "421 4.3.2 Bye", close: true } : undefined,
  });
  await ready(f);
  const seen: string[][] = [];
  let taken = 0;
  function* msgs() {
    for (let i = 0; i < 4; i++) {
      taken++;
      yield message();
    }
  }
  const summary = await f.sender.sendMany(msgs(), (_m, r) => {
    seen.push(outcomes(r));
  });
  // The third message's envelope went out behind the second body (PIPELINING), so it is
  // reported too: deferred, never delivered. The fourth was never taken.
  assertEquals(seen, [["delivered"], ["deferred"], ["deferred"]]);
  assertEquals(summary, { sent: 3, connectionLost: true });
  assertEquals(taken, 3);
  assertEquals(f.server.bodies.length, 2);
  await finish(f);
});

Deno.test("SmtpSender.quit() sends QUIT and reads 221 without throwing", async () => {
  const f = setup();
  await ready(f);
  await f.sender.quit();
  await f.sender.quit();
  await f.server.done;
  assertEquals(f.server.commands, ["EHLO provider.test", "QUIT"]);
  f.client.destroy();
});

Deno.test("SmtpSender reports every recipient even with no RCPT sendable", async () => {
  const f = setup();
  await ready(f);
  const result = await f.sender.send(message({ recipients: ["bad\r\nRSET@c.test", ""] }));
  assertEquals(outcomes(result), ["failed", "failed"]);
  assertEquals(result.recipients[0]?.reply.enhanced, "5.1.3");
  const none = await f.sender.send(message({ recipients: [] }));
  assertEquals(none.recipients, []);
  await finish(f);
  assertEquals(f.server.commands, ["EHLO provider.test", "QUIT"]);
});

Deno.test("SmtpSender returns a refusing greeting to the caller, who can still QUIT", async () => {
  const f = setup({ greeting: "554 5.3.2 Not now" });
  const greeting = await f.sender.greet();
  assertEquals(greeting.code, 554);
  assert(!f.sender.isConnectionLost);
  await finish(f);
  assertEquals(f.server.commands, ["QUIT"]);
});

Deno.test("SmtpSender drops the connection on a malformed reply", async () => {
  const f = setup({ on: (_c, verb) => verb === "MAIL" ? "2x0 what" : undefined });
  await ready(f);
  const result = await f.sender.send(message());
  assertEquals(outcomes(result), ["deferred"]);
  assertEquals(result.connectionLost, true);
  assertEquals(result.recipients[0]?.reply.enhanced, "4.5.0");
  await finish(f);
});

Deno.test("SmtpSender drops the connection on a reply code out of place", async () => {
  const f = setup({ on: (_c, verb) => verb === "RCPT" ? "354 Huh" : undefined });
  await ready(f);
  const result = await f.sender.send(message({ recipients: ["a@c.test", "b@c.test"] }));
  assertEquals(outcomes(result), ["deferred", "deferred"]);
  assertEquals(result.connectionLost, true);
  await finish(f);
});

Deno.test("SmtpSender defers every recipient when the peer closes among pipelined replies", async () => {
  const f = setup({
    on: (cmd, verb) => verb === "RCPT" && cmd.includes("b@") ? { close: true } : undefined,
  });
  await ready(f);
  const result = await f.sender.send(message({ recipients: ["a@c.test", "b@c.test"] }));
  assertEquals(outcomes(result), ["deferred", "deferred"]);
  assertEquals(result.recipients[0]?.reply.lines, ["Connection lost"]);
  await finish(f);
});
