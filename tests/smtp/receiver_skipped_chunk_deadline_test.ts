/**
 * Review wt16-r1 C: a BDAT chunk the receiver refuses before its octets (no MAIL, no recipient,
 * a bad argument) is still read, to stay in step (RFC 3030 §3: `skipChunk` in
 * src/smtp/_receiver_body.ts). That read has the per-read timeout only, not the total body
 * deadline every accepted DATA and BDAT body has (SECURITY.md "slowloris in DATA / one BDAT
 * chunk"), and the count it reads may be up to 15 digits: `BDAT 999999999999999` with a byte
 * just before each `smtp.timeout` holds a connection slot for ever, without MAIL or AUTH.
 *
 * As mx_attacks_test.ts does for accepted bodies: per read 1 s, the whole body 400 ms, one byte
 * every 50 ms (never trips the per-read timeout) for 2 s: only a total deadline ends it early,
 * with `421 4.4.2`.
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { startReady } from "./_session.ts";
import type { Client } from "./_session.ts";

const OPTIONS = { dataTimeoutMs: 1_000, dataDeadlineMs: 400 };
const OCTETS = 40;

/** Writes `n` bytes one every `everyMs` until `isDone()`. */
async function trickle(client: Client, n: number, everyMs: number, isDone: () => boolean) {
  for (let i = 0; i < n && !isDone(); i++) {
    await client.send("y").catch(() => {});
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

Deno.test("receiver: a refused BDAT chunk read to stay in step is bounded by the body deadline too (421 4.4.2) (review wt16-r1 C)", async (t) => {
  const cases: { name: string; before: string[]; command: string }[] = [
    { name: "BDAT before MAIL", before: [], command: `BDAT ${OCTETS}` },
    {
      name: "BDAT with no recipient",
      before: ["MAIL FROM:<a@b.test>"],
      command: `BDAT ${OCTETS}`,
    },
    {
      name: "BDAT with a bad argument",
      before: ["MAIL FROM:<a@b.test>", "RCPT TO:<x@d.test>"],
      command: `BDAT ${OCTETS} NOW`,
    },
  ];
  for (const c of cases) {
    await t.step(c.name, async () => {
      const s = await startReady({ options: OPTIONS });
      let isDone = false;
      try {
        for (const line of c.before) assertMatch(await s.client.command(line), /^250 /);
        await s.client.send(`${c.command}\r\n`);
        const sending = trickle(s.client, OCTETS, 50, () => isDone);
        const r = await s.client.reply(5_000);
        isDone = true;
        await sending;
        assertEquals(r, "421 4.4.2 Message took too long, closing connection");
        assertEquals(s.sink.accepted.length, 0);
      } finally {
        isDone = true;
        await s.end();
      }
    });
  }
});
