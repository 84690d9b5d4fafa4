import tls from "node:tls";
import {
  deepStrictEqual as assertEquals,
  match as assertMatch,
  ok as assert,
} from "node:assert/strict";
import { bytes, startReady, startSession } from "./_session.ts";
import { concatBytes } from "../../src/wire/bytes.ts";
import { FakeSink } from "../_helpers/fake_sink.ts";
import { reply } from "../../src/wire/reply.ts";
import type { SmtpEvents } from "../../src/smtp/events.ts";
import type { LogFields, Logger } from "../../src/observe/log.ts";
import { SMUGGLED_ENDS } from "../_helpers/smuggled_ends.ts";

Deno.test("SmtpReceiver greets with 220 and lists its extensions after EHLO", async () => {
  const s = await startSession();
  assertEquals(s.greeting, "220 mx.test ESMTP ready");
  assertEquals(
    await s.client.command("EHLO client.test"),
    [
      "250-mx.test",
      "250-PIPELINING",
      "250-SIZE 10000",
      "250-8BITMIME",
      "250-ENHANCEDSTATUSCODES",
      "250-SMTPUTF8",
      "250 CHUNKING",
    ].join("\n"),
  );
  assertEquals(await s.client.command("QUIT"), "221 2.0.0 Bye");
  assertEquals((await s.done).reason, "quit");
  await s.end();
});

Deno.test("SmtpReceiver uses the configured greeting and answers HELO in one line", async () => {
  const s = await startSession({ options: { greeting: "relay.test ESMTP hello" } });
  assertEquals(s.greeting, "220 relay.test ESMTP hello");
  assertEquals(await s.client.command("HELO client.test"), "250 mx.test");
  assertEquals(await s.client.command("EHLO"), "501 5.5.4 Syntax: EHLO hostname");
  await s.end();
});

Deno.test("SmtpReceiver accepts a message and hands the body byte-exact to the sink", async () => {
  const s = await startReady();
  assertEquals(await s.client.command("MAIL FROM:<a@b.test> BODY=8BITMIME"), "250 2.1.0 Sender OK");
  assertEquals(await s.client.command("RCPT TO:<x@dest.test>"), "250 2.1.5 OK");
  assertEquals(
    await s.client.command("DATA"),
    "354 Start mail input; end with <CRLF>.<CRLF>",
  );
  const body = concatBytes([
    bytes("Subject: t\r\n\r\n..leading dot\r\n.\r\n...\r\nh\xe9 "),
    Uint8Array.of(0xc3, 0xa9, 0xff, 0x80),
    bytes("\r\n"),
  ]);
  // On the wire: dot-stuffed lines ("." → "..", ".." → "...").
  await s.client.send(
    concatBytes([
      bytes("Subject: t\r\n\r\n...leading dot\r\n..\r\n....\r\nh\xe9 "),
      Uint8Array.of(0xc3, 0xa9, 0xff, 0x80),
      bytes("\r\n.\r\n"),
    ]),
  );
  assertEquals(await s.client.reply(), "250 2.6.0 Queued as T1");
  const tx = s.sink.transactions[0];
  assert(tx);
  assertEquals(tx.body(), body);
  assertEquals(tx.mail, { address: "a@b.test", params: { body: "8BITMIME" } });
  assertEquals(tx.recipients.map((r) => r.address), ["x@dest.test"]);
  assertEquals(tx.session.protocol, "ESMTP");
  assertEquals(tx.session.heloName, "client.test");
  assertEquals(tx.aborted, 0);
  await s.client.command("QUIT");
  assertEquals(await s.done, { reason: "quit", messagesAccepted: 1 });
  await s.end();
});

Deno.test("SmtpReceiver writes each reply once, none waiting for the kernel (#13)", async () => {
  // A flushed write costs a promise, a timer and a callback: at an MX, seven per message.
  const s = await startReady();
  await s.client.command("MAIL FROM:<a@b.test>");
  await s.client.command("RCPT TO:<x@dest.test>");
  await s.client.command("DATA");
  await s.client.send("Subject: t\r\n\r\nhi\r\n.\r\n");
  assertEquals(await s.client.reply(), "250 2.6.0 Queued as T1");
  assertEquals(await s.client.command("QUIT"), "221 2.0.0 Bye");
  assertEquals(await s.done, { reason: "quit", messagesAccepted: 1 });
  const replies = s.server.written.map((w) => new TextDecoder().decode(w).slice(0, 3));
  assertEquals(replies, ["220", "250", "250", "250", "354", "250", "221"]);
  assertEquals(s.server.writeOptions.filter((o) => o?.flush === true), []);
  await s.end();
});

Deno.test("SmtpReceiver formats its debug lines only for a logger that writes them (#13)", async () => {
  for (const isDebug of [false, true]) {
    const debugEvents: string[] = [];
    const log: Logger = {
      debug: (event) => void debugEvents.push(event),
      info: () => {},
      warn: () => {},
      error: () => {},
      with: () => log,
      isEnabled: (level) => level !== "debug" || isDebug,
    };
    const s = await startReady({ log });
    await s.client.command("MAIL FROM:<a@b.test>");
    await s.client.command("QUIT");
    await s.done;
    // Two lines per reply and state change would cost every command of every session.
    const replies = debugEvents.filter((e) => e === "smtp_reply").length;
    assertEquals([replies, debugEvents.includes("smtp_state")], isDebug ? [4, true] : [0, false]);
    await s.end();
  }
});

Deno.test("SmtpReceiver logs a session's end at info only when the client did not end it (#13)", async (t) => {
  const ends = async (
    finish: (s: Awaited<ReturnType<typeof startReady>>) => Promise<void>,
    options = {},
  ) => {
    const lines: string[] = [];
    const record = (level: string) => (event: string, fields: LogFields = {}) => {
      if (event === "smtp_session_end") lines.push(`${level} ${fields.reason}`);
    };
    const log: Logger = {
      debug: record("debug"),
      info: record("info"),
      warn: record("warn"),
      error: record("error"),
      with: () => log,
    };
    const s = await startReady({ log, options });
    await finish(s);
    await s.done;
    await s.end();
    return lines;
  };
  await t.step("QUIT: debug", async () => {
    assertEquals(await ends(async (s) => void await s.client.command("QUIT")), ["debug quit"]);
  });
  await t.step("the client closes: debug", async () => {
    assertEquals(await ends((s) => Promise.resolve(s.client.conn.destroy())), ["debug eof"]);
  });
  await t.step("a timeout: info", async () => {
    const got = await ends(async (s) => void await s.client.reply(), { commandTimeoutMs: 50 });
    assertEquals(got, ["info timeout"]);
  });
});

Deno.test("SmtpReceiver answers a pipelined group in order", async () => {
  const s = await startReady();
  await s.client.send(
    "MAIL FROM:<a@b.test>\r\nRCPT TO:<x@dest.test>\r\nRCPT TO:<bad>\r\nRCPT TO:<y@dest.test>\r\nDATA\r\n",
  );
  assertEquals(await s.client.replies(5), [
    "250 2.1.0 Sender OK",
    "250 2.1.5 OK",
    "501 5.5.4 Syntax: RCPT TO:<address> [parameters]",
    "250 2.1.5 OK",
    "354 Start mail input; end with <CRLF>.<CRLF>",
  ]);
  await s.client.send("hi\r\n.\r\nMAIL FROM:<>\r\nRCPT TO:<z@dest.test>\r\nRSET\r\nNOOP\r\n");
  assertEquals(await s.client.replies(5), [
    "250 2.6.0 Queued as T1",
    "250 2.1.0 Sender OK",
    "250 2.1.5 OK",
    "250 2.0.0 Reset OK",
    "250 2.0.0 OK",
  ]);
  assertEquals(s.sink.transactions.length, 2);
  assertEquals(s.sink.transactions[1]?.aborted, 1);
  await s.end();
});

Deno.test("SmtpReceiver refuses commands outside their states with 503 5.5.1", async (t) => {
  const rows = [
    { before: [], cmd: "MAIL FROM:<a@b.test>", want: "503 5.5.1 Send EHLO or HELO first" },
    { before: [], cmd: "RCPT TO:<x@d.test>", want: "503 5.5.1 Send EHLO or HELO first" },
    { before: ["EHLO c"], cmd: "RCPT TO:<x@d.test>", want: "503 5.5.1 Send MAIL first" },
    { before: ["EHLO c"], cmd: "DATA", want: "503 5.5.1 Send MAIL first" },
    {
      before: ["EHLO c", "MAIL FROM:<a@b.test>"],
      cmd: "MAIL FROM:<a@b.test>",
      want: "503 5.5.1 Sender already specified",
    },
    {
      before: ["EHLO c", "MAIL FROM:<a@b.test>"],
      cmd: "DATA",
      want: "554 5.5.1 No valid recipients",
    },
    {
      before: ["EHLO c", "MAIL FROM:<a@b.test>"],
      cmd: "STARTTLS",
      want: "503 5.5.1 Bad sequence of commands",
    },
    { before: [], cmd: "FROB x", want: "500 5.5.1 Command unrecognized" },
    { before: [], cmd: "STARTTLS", want: "502 5.5.1 Command not implemented" },
    {
      before: [],
      cmd: "VRFY x",
      want: "252 2.5.0 Cannot VRFY user, but will accept message and attempt delivery",
    },
    { before: [], cmd: "HELP", want: "214 2.0.0 See RFC 5321" },
    { before: [], cmd: "noop whatever", want: "250 2.0.0 OK" },
    { before: [], cmd: "RSET", want: "250 2.0.0 Reset OK" },
  ];
  for (const row of rows) {
    await t.step(`${row.before.join(", ") || "(fresh)"} then ${row.cmd}`, async () => {
      const s = await startSession({ options: { maxErrors: 10 } });
      for (const b of row.before) await s.client.command(b);
      assertEquals(await s.client.command(row.cmd), row.want);
      await s.end();
    });
  }
});

Deno.test("SmtpReceiver checks MAIL and RCPT parameters", async (t) => {
  const rows = [
    { cmd: "MAIL FROM:<a@b.test> FOO=1", want: "555 5.5.4 Unsupported parameter" },
    { cmd: "MAIL FROM:<a@b.test> SIZE=1 SIZE=2", want: "501 5.5.4 Duplicate parameter" },
    { cmd: "MAIL FROM:<a@b.test> BODY=9BIT", want: "501 5.5.4 Invalid parameter syntax" },
    { cmd: "MAIL FROM:<a@b.test> SIZE=10000", want: "250 2.1.0 Sender OK" },
    {
      cmd: "MAIL FROM:<a@b.test> SIZE=10001",
      want: "552 5.3.4 Message size exceeds fixed maximum message size",
    },
    { cmd: "MAIL FROM:<ü@b.test>", want: "553 5.6.7 Non-ASCII address requires SMTPUTF8" },
    { cmd: "MAIL FROM:<ü@b.test> SMTPUTF8", want: "250 2.1.0 Sender OK" },
    { cmd: "MAIL FROM: <a@b.test>", want: "250 2.1.0 Sender OK" },
    { cmd: "MAIL FROM:a@b.test", want: "501 5.5.4 Syntax: MAIL FROM:<address> [parameters]" },
    { cmd: "MAIL FROM:<>", want: "250 2.1.0 Sender OK" },
  ];
  for (const row of rows) {
    await t.step(row.cmd, async () => {
      const s = await startReady();
      assertEquals(await s.client.command(row.cmd), row.want);
      await s.end();
    });
  }
  await t.step("HELO clients may not use parameters", async () => {
    const s = await startSession();
    await s.client.command("HELO c");
    assertEquals(
      await s.client.command("MAIL FROM:<a@b.test> SIZE=10"),
      "555 5.5.4 Unsupported parameter",
    );
    await s.end();
  });
  await t.step("RCPT: null path, NOTIFY, ORCPT, non-ASCII", async () => {
    const s = await startReady({ options: { maxErrors: 10 } });
    await s.client.command("MAIL FROM:<a@b.test>");
    assertEquals(await s.client.command("RCPT TO:<>"), "501 5.1.3 Null recipient not allowed");
    assertEquals(
      await s.client.command("RCPT TO:<x@d.test> NOTIFY=SUCCESS,DELAY ORCPT=rfc822;x+40d.test"),
      "250 2.1.5 OK",
    );
    assertEquals(
      await s.client.command("RCPT TO:<ü@d.test>"),
      "553 5.6.7 Non-ASCII address requires SMTPUTF8",
    );
    assertEquals(
      await s.client.command("RCPT TO:<x@d.test> XYZ"),
      "555 5.5.4 Unsupported parameter",
    );
    assertEquals(s.sink.transactions[0]?.recipients[0], {
      address: "x@d.test",
      domain: "d.test",
      notify: "SUCCESS,DELAY",
      orcpt: "rfc822;x+40d.test",
    });
    await s.end();
  });
});

Deno.test("SmtpReceiver limits a command line to 512 bytes with CRLF", async (t) => {
  await t.step("512 is accepted", async () => {
    const s = await startReady();
    const line = "NOOP " + "x".repeat(512 - 2 - 5);
    assertEquals(line.length + 2, 512);
    assertEquals(await s.client.command(line), "250 2.0.0 OK");
    await s.end();
  });
  await t.step("513 is drained, refused with 500 5.5.2, and the session goes on", async () => {
    const s = await startReady();
    const line = "NOOP " + "x".repeat(513 - 2 - 5);
    await s.client.send(line + "\r\nNOOP\r\n");
    assertEquals(await s.client.replies(2), ["500 5.5.2 Line too long", "250 2.0.0 OK"]);
    await s.end();
  });
});

Deno.test("SmtpReceiver refuses a bare LF or CR in a command line and closes", async (t) => {
  for (const raw of ["NOOP\n", "NO\rOP\r\n", "MAIL FROM:<a@b.test>\rRCPT TO:<x@d.test>\r\n"]) {
    await t.step(JSON.stringify(raw), async () => {
      const s = await startReady();
      await s.client.send(raw);
      assertEquals(await s.client.reply(), "500 5.5.2 Bare CR or LF not allowed");
      assertEquals((await s.done).reason, "bareNewline");
      assertEquals(s.sink.transactions.length, 0);
      await s.end();
    });
  }
});

Deno.test("SmtpReceiver refuses NUL and control characters in commands", async () => {
  const s = await startReady();
  assertEquals(await s.client.command("NOOP \x00"), "500 5.5.2 Invalid characters in command");
  assertEquals(await s.client.command("NOOP \x1b[2J"), "500 5.5.2 Invalid characters in command");
  await s.end();
});

Deno.test("SmtpReceiver accepts maxRecipients recipients and refuses one more with 452 4.5.3", async () => {
  const s = await startReady();
  await s.client.command("MAIL FROM:<a@b.test>");
  for (const r of ["a", "b", "c"]) {
    assertEquals(await s.client.command(`RCPT TO:<${r}@d.test>`), "250 2.1.5 OK");
  }
  assertEquals(await s.client.command("RCPT TO:<d@d.test>"), "452 4.5.3 Too many recipients");
  assertEquals(s.sink.transactions[0]?.recipients.length, 3);
  await s.end();
});

Deno.test("SmtpReceiver does not count recipients the sink refused", async () => {
  const sink = new FakeSink({
    decideRecipient: (r) =>
      r.domain === "d.test" ? reply(250, "2.1.5", "OK") : reply(550, "5.7.1", "Relaying denied"),
  });
  const s = await startReady({ sink });
  await s.client.command("MAIL FROM:<a@b.test>");
  for (let i = 0; i < 5; i++) {
    assertEquals(await s.client.command(`RCPT TO:<x${i}@other.test>`), "550 5.7.1 Relaying denied");
  }
  assertEquals(await s.client.command("RCPT TO:<x@d.test>"), "250 2.1.5 OK");
  await s.end();
});

async function sendMessage(s: Awaited<ReturnType<typeof startReady>>, body: Uint8Array) {
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\nDATA\r\n");
  await s.client.replies(3);
  await s.client.send(concatBytes([body, bytes(".\r\n")]));
  return await s.client.reply();
}

Deno.test("SmtpReceiver limits the message size: N accepted, N+1 read to the end and refused", async (t) => {
  const line = "x".repeat(98) + "\r\n"; // 100 bytes
  await t.step("N bytes", async () => {
    const s = await startReady({ options: { maxMessageBytes: 1000 } });
    assertEquals(await sendMessage(s, bytes(line.repeat(10))), "250 2.6.0 Queued as T1");
    assertEquals(s.sink.transactions[0]?.body().length, 1000);
    await s.end();
  });
  await t.step("N+1 bytes", async () => {
    const s = await startReady({ options: { maxMessageBytes: 1000 } });
    assertEquals(
      await sendMessage(s, bytes(line.repeat(10) + "\r\n")),
      "552 5.3.4 Message size exceeds fixed maximum message size",
    );
    assertEquals(s.sink.transactions[0]?.finished, false);
    assertEquals(s.sink.transactions[0]?.aborted, 1);
    assertEquals(await s.client.command("NOOP"), "250 2.0.0 OK");
    await s.end();
  });
});

Deno.test("SmtpReceiver limits a DATA line to 1000 bytes with CRLF", async (t) => {
  await t.step("1000 accepted", async () => {
    const s = await startReady();
    assertEquals(await sendMessage(s, bytes("y".repeat(998) + "\r\n")), "250 2.6.0 Queued as T1");
    await s.end();
  });
  await t.step("1001 refused with 554 5.6.0 after the real end", async () => {
    const s = await startReady();
    assertEquals(
      await sendMessage(s, bytes("y".repeat(999) + "\r\nMAIL FROM:<x@y.test>\r\n")),
      "554 5.6.0 Message line too long",
    );
    assertEquals(await s.client.command("NOOP"), "250 2.0.0 OK");
    assertEquals(s.sink.accepted.length, 0);
    await s.end();
  });
});

Deno.test("SmtpReceiver ends the session after maxErrors+1 protocol errors with 421 4.7.0", async (t) => {
  await t.step("N errors are tolerated", async () => {
    const s = await startReady();
    await s.client.send("FOO\r\nBAR\r\nBAZ\r\nNOOP\r\n");
    assertEquals(await s.client.replies(4), [
      "500 5.5.1 Command unrecognized",
      "500 5.5.1 Command unrecognized",
      "500 5.5.1 Command unrecognized",
      "250 2.0.0 OK",
    ]);
    await s.end();
  });
  await t.step("N+1 errors end it", async () => {
    const s = await startReady();
    await s.client.send("FOO\r\nBAR\r\nBAZ\r\nQUX\r\nNOOP\r\n");
    assertEquals(await s.client.replies(5), [
      "500 5.5.1 Command unrecognized",
      "500 5.5.1 Command unrecognized",
      "500 5.5.1 Command unrecognized",
      "500 5.5.1 Command unrecognized",
      "421 4.7.0 Too many errors, closing connection",
    ]);
    assertEquals((await s.done).reason, "tooManyErrors");
    await s.end();
  });
});

Deno.test("SmtpReceiver never ends DATA at a smuggled end-of-data", async (t) => {
  for (const v of SMUGGLED_ENDS) {
    await t.step(JSON.stringify(v), async () => {
      const s = await startReady();
      const smuggled = `Subject: a\r\n\r\nhello${v}MAIL FROM:<ceo@victim.test>\r\n` +
        `RCPT TO:<x@d.test>\r\nDATA\r\nforged\r\n`;
      assertEquals(await sendMessage(s, bytes(smuggled)), "550 5.5.2 Bare CR or LF not allowed");
      assertEquals((await s.done).reason, "bareNewline");
      assertEquals(s.sink.transactions.length, 1);
      assertEquals(s.sink.accepted.length, 0);
      assertEquals(s.sink.transactions[0]?.aborted, 1);
      await s.end();
    });
  }
});

Deno.test("SmtpReceiver takes BDAT chunks byte-exact without unstuffing", async () => {
  const s = await startReady();
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\n");
  await s.client.replies(2);
  const part1 = bytes(".\r\n.leading\r\n");
  const part2 = concatBytes([bytes("8-bit and NUL "), Uint8Array.of(0, 0xff), bytes("\r\n")]);
  await s.client.send(
    concatBytes([
      bytes(`BDAT ${part1.length}\r\n`),
      part1,
      bytes(`BDAT ${part2.length} LAST\r\n`),
      part2,
    ]),
  );
  assertEquals(await s.client.replies(2), [
    `250 2.0.0 ${part1.length} octets received`,
    "250 2.6.0 Queued as T1",
  ]);
  assertEquals(s.sink.transactions[0]?.body(), concatBytes([part1, part2]));
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\nBDAT 0 LAST\r\n");
  assertEquals(await s.client.replies(3), [
    "250 2.1.0 Sender OK",
    "250 2.1.5 OK",
    "250 2.6.0 Queued as T2",
  ]);
  assertEquals(s.sink.transactions[1]?.body().length, 0);
  await s.end();
});

Deno.test("SmtpReceiver consumes the octets of a refused BDAT to stay in sync", async () => {
  const s = await startReady();
  const chunk = bytes("MAIL FROM:<evil@x.test>\r\n");
  await s.client.send(
    concatBytes([bytes(`BDAT ${chunk.length} LAST\r\n`), chunk, bytes("NOOP\r\n")]),
  );
  assertEquals(await s.client.replies(2), ["503 5.5.1 Send MAIL first", "250 2.0.0 OK"]);
  assertEquals(s.sink.transactions.length, 0);
  await s.end();
});

Deno.test("SmtpReceiver does not mix BDAT and DATA", async () => {
  const s = await startReady();
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\nBDAT 2\r\nabDATA\r\n");
  assertEquals(await s.client.replies(4), [
    "250 2.1.0 Sender OK",
    "250 2.1.5 OK",
    "250 2.0.0 2 octets received",
    "503 5.5.1 DATA and BDAT cannot be mixed",
  ]);
  await s.end();
});

Deno.test("SmtpReceiver refuses a BDAT body over the size limit and the rest of the transaction", async () => {
  const s = await startReady({ options: { maxMessageBytes: 10 } });
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\n");
  await s.client.replies(2);
  await s.client.send("BDAT 6\r\n123456BDAT 5\r\n12345BDAT 1 LAST\r\nxNOOP\r\n");
  assertEquals(await s.client.replies(4), [
    "250 2.0.0 6 octets received",
    "552 5.3.4 Message size exceeds fixed maximum message size",
    "503 5.5.1 Send MAIL first",
    "250 2.0.0 OK",
  ]);
  assertEquals(s.sink.transactions[0]?.aborted, 1);
  await s.end();
});

Deno.test("SmtpReceiver closes an idle session with 421 4.4.2", async () => {
  const s = await startReady({ options: { commandTimeoutMs: 50 } });
  await s.client.command("MAIL FROM:<a@b.test>");
  assertEquals(await s.client.reply(), "421 4.4.2 Idle timeout, closing connection");
  assertEquals((await s.done).reason, "timeout");
  assertEquals(s.sink.transactions[0]?.aborted, 1);
  await s.end();
});

Deno.test("SmtpReceiver answers 451 4.3.0 when the sink throws, and aborts", async (t) => {
  for (const at of ["begin", "addRecipient", "write", "finish"] as const) {
    await t.step(at, async () => {
      const sink = new FakeSink({ throwAt: at });
      const s = await startReady({ sink });
      await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\nDATA\r\n");
      const replies = await s.client.replies(at === "begin" || at === "addRecipient" ? 3 : 3);
      const want451 = "451 4.3.0 Local error in processing, try again later";
      if (at === "begin") assertEquals(replies[0], want451);
      else if (at === "addRecipient") assertEquals(replies[1], want451);
      else {
        await s.client.send("body\r\n.\r\n");
        assertEquals(await s.client.reply(), want451);
        assertEquals(s.sink.transactions[0]?.aborted, 1);
      }
      assertEquals(await s.client.command("NOOP"), "250 2.0.0 OK");
      assertEquals(s.sink.accepted.length, 0);
      await s.end();
    });
  }
});

Deno.test("SmtpReceiver passes a sink refusal at MAIL on as is", async () => {
  const sink = new FakeSink({ rejectMail: reply(550, "5.7.1", "Sender refused") });
  const s = await startReady({ sink });
  assertEquals(await s.client.command("MAIL FROM:<a@b.test>"), "550 5.7.1 Sender refused");
  assertEquals(await s.client.command("RCPT TO:<x@d.test>"), "503 5.5.1 Send MAIL first");
  await s.end();
});

Deno.test("SmtpReceiver aborts the transaction at end of stream inside DATA", async () => {
  const s = await startReady();
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\nDATA\r\n");
  await s.client.replies(3);
  await s.client.send("half a message\r\n");
  s.client.conn.destroy();
  assertEquals((await s.done).reason, "eof");
  assertEquals(s.sink.transactions[0]?.aborted, 1);
  assertEquals(s.sink.accepted.length, 0);
  await s.end();
});

Deno.test("SmtpReceiver prepends a Received: header as the first body bytes", async () => {
  const s = await startReady({
    options: { addTraceHeader: true, now: () => new Date(Date.UTC(2024, 0, 2, 3, 4, 5)) },
  });
  assertEquals(await sendMessage(s, bytes("Subject: x\r\n\r\nhi\r\n")), "250 2.6.0 Queued as T1");
  const text = new TextDecoder().decode(s.sink.transactions[0]?.body());
  assertEquals(
    text,
    "Received: from client.test ([127.0.0.1])\r\n\tby mx.test with ESMTP id T1\r\n" +
      "\tfor <x@d.test>; Tue, 2 Jan 2024 03:04:05 +0000\r\nSubject: x\r\n\r\nhi\r\n",
  );
  await s.end();
});

Deno.test("SmtpReceiver refuses MAIL after maxMessagesPerSession messages with 421", async () => {
  const s = await startReady({ options: { maxMessagesPerSession: 1 } });
  assertEquals(await sendMessage(s, bytes("a\r\n")), "250 2.6.0 Queued as T1");
  assertEquals(
    await s.client.command("MAIL FROM:<a@b.test>"),
    "421 4.7.0 Too many messages in one session, closing connection",
  );
  assertEquals(await s.done, { reason: "tooManyMessages", messagesAccepted: 1 });
  await s.end();
});

Deno.test("SmtpReceiver: EHLO inside a transaction resets it", async () => {
  const s = await startReady();
  await s.client.command("MAIL FROM:<a@b.test>");
  await s.client.command("EHLO again.test");
  assertEquals(s.sink.transactions[0]?.aborted, 1);
  assertEquals(await s.client.command("MAIL FROM:<a@b.test>"), "250 2.1.0 Sender OK");
  await s.end();
});

Deno.test("SmtpReceiver reports the refusals it decides itself to its events: recipients over the limit, size, content", async () => {
  const seen: string[] = [];
  const events: SmtpEvents = {
    messageQueued() {},
    rcptRejected: (reason) => seen.push(`rcpt:${reason}`),
    messageRefused: (reason) => seen.push(`message:${reason}`),
  };
  const s = await startReady({ options: { events } });
  await s.client.command("MAIL FROM:<a@b.test>");
  for (const r of ["a", "b", "c"]) await s.client.command(`RCPT TO:<${r}@d.test>`);
  assertEquals(await s.client.command("RCPT TO:<d@d.test>"), "452 4.5.3 Too many recipients");
  await s.client.command("RSET");
  assertMatch(await s.client.command("MAIL FROM:<a@b.test> SIZE=20000"), /^552 5\.3\.4/);
  const fits = await sendMessage(s, bytes("x".repeat(998) + "\r\n"));
  assertMatch(fits, /^250 /, "a 1000-byte body is within the 10000-byte test limit");
  const big = await sendMessage(s, bytes(("y".repeat(98) + "\r\n").repeat(101)));
  assertMatch(big, /^552 5\.3\.4/);
  const long = await sendMessage(s, bytes("z".repeat(1001) + "\r\n"));
  assertMatch(long, /^554 5\.6\.0/);
  assertEquals(seen, [
    "rcpt:too_many_recipients",
    "message:size",
    "message:size",
    "message:content",
  ]);
  await s.end();
});

Deno.test("SmtpReceiver answers STARTTLS before EHLO with 503 5.5.1 when TLS is offered (#10)", async () => {
  // The handshake never starts here, so a context without a certificate will do.
  const s = await startSession({ options: { tls: { secureContext: tls.createSecureContext() } } });
  assertEquals(await s.client.command("STARTTLS"), "503 5.5.1 Send EHLO or HELO first");
  const ehlo = await s.client.command("EHLO client.test");
  assertEquals(ehlo.split("\n").at(-1), "250 STARTTLS");
  await s.end();
});
