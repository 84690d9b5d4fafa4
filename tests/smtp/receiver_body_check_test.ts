/**
 * One body check for DATA and BDAT (#10): a bare CR or LF, or a line over the limit, gets the
 * same reply whichever way the body came, and nothing reaches the sink. BDAT once answered
 * 250 to all of them, and the drain then met the message and dropped its whole connection.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { bytes, startReady } from "./_session.ts";
import { concatBytes } from "../../src/wire/bytes.ts";
import { dotStuff } from "../_helpers/smtp_submit.ts";
import type { Session } from "./_session.ts";

const BARE = "550 5.5.2 Bare CR or LF not allowed";
const TOO_LONG = "554 5.6.0 Message line too long";

/** A line of `n` octets including its CRLF. */
function line(n: number): string {
  return "x".repeat(n - 2) + "\r\n";
}

/** A line of `n` octets that starts with a dot (as it is in the message, unstuffed). */
function dotLine(n: number): string {
  return "." + "x".repeat(n - 3) + "\r\n";
}

const ROWS: { name: string; body: string; want: string }[] = [
  { name: "a bare LF", body: "Subject: a\r\n\r\nx\ny\r\n", want: BARE },
  { name: "a bare CR", body: "Subject: a\r\n\r\nx\ry\r\n", want: BARE },
  { name: "a line of 1000 octets (N)", body: `Subject: a\r\n\r\n${line(1000)}`, want: "250" },
  { name: "a line of 1001 octets (N+1)", body: `Subject: a\r\n\r\n${line(1001)}`, want: TOO_LONG },
  // Measured as DATA carries it: the dot a sender stuffs before it counts.
  { name: "a dot line, 1000 on the wire", body: `S: a\r\n\r\n${dotLine(999)}`, want: "250" },
  { name: "a dot line, 1001 on the wire", body: `S: a\r\n\r\n${dotLine(1000)}`, want: TOO_LONG },
  {
    name: "8-bit text without BODY=8BITMIME (accepted, as DATA always did)",
    body: "S: \u00e9\r\n\r\n\u00e9\r\n",
    want: "250",
  },
];

/** Sends the body with DATA (dot-stuffed) and returns the final reply. */
async function viaData(s: Session, body: Uint8Array): Promise<string> {
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\nDATA\r\n");
  await s.client.replies(3);
  await s.client.send(concatBytes([dotStuff(body), bytes(".\r\n")]));
  return await s.client.reply();
}

/** Sends the body with BDAT in chunks of `size` octets; the first non-250 or the last reply. */
async function viaBdat(s: Session, body: Uint8Array, size: number): Promise<string> {
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\n");
  await s.client.replies(2);
  let at = 0;
  for (;;) {
    const part = body.subarray(at, at + size);
    at += part.length;
    const isLast = at >= body.length;
    await s.client.send(
      concatBytes([bytes(`BDAT ${part.length}${isLast ? " LAST" : ""}\r\n`), part]),
    );
    const r = await s.client.reply();
    if (isLast || !r.startsWith("250")) return r;
  }
}

Deno.test("DATA and BDAT give a body the same reply, in one chunk or many (#10)", async (t) => {
  for (const row of ROWS) {
    const body = bytes(row.body);
    const ways: [string, (s: Session) => Promise<string>][] = [
      ["DATA", (s) => viaData(s, body)],
      ["BDAT in one chunk", (s) => viaBdat(s, body, body.length)],
      ["BDAT in 7-octet chunks", (s) => viaBdat(s, body, 7)],
      ["BDAT cut inside CRLF", (s) => viaBdat(s, body, body.indexOf(13) + 1)],
    ];
    for (const [how, send] of ways) {
      await t.step(`${row.name} over ${how}`, async () => {
        const s = await startReady();
        const got = await send(s);
        assertEquals(got.slice(0, row.want.length), row.want);
        const accepted = s.sink.accepted;
        assertEquals(accepted.length, row.want === "250" ? 1 : 0);
        if (row.want === "250") assertEquals(accepted[0]?.body(), body);
        await s.end();
      });
    }
  }
});

Deno.test("after a refused BDAT chunk the transaction is over and the session goes on (#10)", async () => {
  const s = await startReady();
  await s.client.send("MAIL FROM:<a@b.test>\r\nRCPT TO:<x@d.test>\r\n");
  await s.client.replies(2);
  // The refusal comes at the chunk that held the bare LF; the next chunk is read and refused.
  await s.client.send("BDAT 3\r\na\nbBDAT 3 LAST\r\nc\r\nNOOP\r\n");
  assertEquals(await s.client.replies(3), [BARE, "503 5.5.1 Send MAIL first", "250 2.0.0 OK"]);
  assertEquals(s.sink.transactions[0]?.aborted, 1);
  // The same session then takes a clean message.
  assertEquals(await viaBdat(s, bytes("S: ok\r\n\r\nok\r\n"), 5), "250 2.6.0 Queued as T2");
  await s.end();
});

Deno.test("a BDAT body whose last chunk ends in a lone CR is refused (#10)", async () => {
  const s = await startReady();
  assertEquals(await viaBdat(s, bytes("S: a\r\n\r\nx\r"), 100), BARE);
  assertEquals(s.sink.accepted.length, 0);
  await s.end();
});
