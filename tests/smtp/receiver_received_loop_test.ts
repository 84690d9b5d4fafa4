/**
 * Mail loops (RFC 5321 §6.3: a relay SHOULD count the Received fields and refuse past a
 * limit): a message whose header section holds 50 or more `Received:` fields, counting the one
 * this relay adds, is refused at the end of its data with `554 5.4.6` (RFC 3463: routing loop
 * detected), nothing stored, as Postfix's `hopcount_limit` (50, its own field counted). Only
 * field names at the start of a header line count: not a folded line, not the body, not a
 * `Received:` inside another field's value. The same through DATA and BDAT, whatever the
 * chunking; the session goes on.
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { startReady } from "./_session.ts";

/** `n` Received fields, each folded once (the continuation line never counts). */
function receivedFields(n: number, name = "Received"): string {
  let out = "";
  for (let i = 0; i < n; i++) {
    out += `${name}: from h${i}.test (h${i}.test [192.0.2.${i % 250}])\r\n` +
      `\tby relay.test with ESMTP id X${i}; Mon, 30 Nov 2026 02:00:00 +0000\r\n`;
  }
  return out;
}

/** Header and body around `fields`; the body and other fields hold look-alikes. */
function message(fields: string): string {
  return "From: a@x.test\r\n" +
    "X-Note: Received: not a field of its own\r\n" +
    fields +
    "Subject: loop\r\n" +
    " Received: a folded line\r\n" +
    "\r\n" +
    "Received: in the body\r\n".repeat(20) +
    "body\r\n";
}

Deno.test("SmtpReceiver: 49 Received fields are taken, 50 get 554 5.4.6 at the end of DATA (nothing stored)", async () => {
  const s = await startReady({ options: { maxMessageBytes: 100_000 } });
  await s.client.send("MAIL FROM:<s@x.test>\r\nRCPT TO:<u@d.test>\r\nDATA\r\n");
  assertEquals((await s.client.replies(3)).map((r) => r.slice(0, 3)), ["250", "250", "354"]);
  await s.client.send(message(receivedFields(49)) + ".\r\n");
  assertEquals((await s.client.reply()).slice(0, 3), "250");
  await s.client.send("MAIL FROM:<s@x.test>\r\nRCPT TO:<u@d.test>\r\nDATA\r\n");
  assertEquals((await s.client.replies(3)).map((r) => r.slice(0, 3)), ["250", "250", "354"]);
  // Any case, white space before the colon (RFC 5322 §4.5, obsolete syntax).
  await s.client.send(
    message(receivedFields(25) + receivedFields(24, "rECEIVED") + receivedFields(1, "Received ")) +
      ".\r\n",
  );
  match(await s.client.reply(), /^554 5\.4\.6 /);
  assertEquals(s.sink.accepted.length, 1);
  assertEquals(s.sink.transactions[1]?.aborted, 1);
  // The session goes on.
  await s.client.send("MAIL FROM:<s@x.test>\r\nRCPT TO:<u@d.test>\r\nDATA\r\n");
  assertEquals((await s.client.replies(3)).map((r) => r.slice(0, 3)), ["250", "250", "354"]);
  await s.client.send("Subject: fine\r\n\r\nhi\r\n.\r\n");
  assertEquals((await s.client.reply()).slice(0, 3), "250");
  await s.end();
});

Deno.test("SmtpReceiver: the Received field this relay adds counts (48 + ours taken, 49 + ours refused)", async () => {
  const s = await startReady({ options: { maxMessageBytes: 100_000, addTraceHeader: true } });
  for (const [n, code] of [[48, "250"], [49, "554"]] as const) {
    await s.client.send("MAIL FROM:<s@x.test>\r\nRCPT TO:<u@d.test>\r\nDATA\r\n");
    assertEquals((await s.client.replies(3)).map((r) => r.slice(0, 3)), ["250", "250", "354"]);
    await s.client.send(message(receivedFields(n)) + ".\r\n");
    assertEquals((await s.client.reply()).slice(0, 3), code, `${n} Received fields`);
  }
  await s.end();
});

Deno.test("SmtpReceiver: BDAT counts Received fields across chunks cut anywhere (554 5.4.6 at LAST)", async () => {
  const s = await startReady({ options: { maxMessageBytes: 100_000 } });
  for (const [n, code] of [[49, "250"], [50, "554"]] as const) {
    const body = new TextEncoder().encode(message(receivedFields(n)));
    await s.client.send("MAIL FROM:<s@x.test>\r\nRCPT TO:<u@d.test>\r\n");
    assertEquals((await s.client.replies(2)).map((r) => r.slice(0, 3)), ["250", "250"]);
    // Chunks of 1 to 9 octets: every field name and CRLF is cut somewhere.
    let at = 0;
    let size = 1;
    while (at < body.length) {
      const part = body.subarray(at, Math.min(body.length, at + size));
      at += part.length;
      const isLast = at === body.length;
      await s.client.send(`BDAT ${part.length}${isLast ? " LAST" : ""}\r\n`);
      await s.client.send(part);
      const r = await s.client.reply();
      assertEquals(r.slice(0, 3), isLast ? code : "250", `${n} fields, chunk ending at ${at}`);
      if (isLast && code === "554") match(r, /^554 5\.4\.6 /);
      size = size % 9 + 1;
    }
  }
  assertEquals(s.sink.accepted.length, 1);
  await s.end();
});
