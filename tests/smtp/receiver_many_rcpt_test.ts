/**
 * Many recipients in one transaction (`submission.max_recipients` allows 100000): each RCPT must
 * cost the same whatever came before it. The transaction's recipient list was copied at every
 * RCPT, so a message to N recipients copied N²/2 entries (5·10⁹ at 100000). Counted here without
 * a clock: every element that goes through an array iterator (a spread, `for…of`, `new Set(…)`)
 * during the RCPTs, which a copy per RCPT makes quadratic.
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { startReady } from "./_session.ts";

/** Runs `fn` with every array iteration counted; the count of elements iterated. */
async function countingArrayIteration(fn: () => Promise<void>): Promise<number> {
  const proto = Array.prototype as unknown as Record<symbol, () => Iterator<unknown>>;
  const original = proto[Symbol.iterator]!;
  let n = 0;
  proto[Symbol.iterator] = function (this: unknown[]) {
    const it = original.call(this);
    return {
      next() {
        n++;
        return it.next();
      },
      [Symbol.iterator]() {
        return this;
      },
    } as Iterator<unknown>;
  };
  try {
    await fn();
  } finally {
    proto[Symbol.iterator] = original;
  }
  return n;
}

Deno.test("SmtpReceiver: N RCPTs in one transaction cost O(N), not O(N²) (the list is not copied per RCPT)", async () => {
  const n = 3000;
  const s = await startReady({ options: { maxRecipients: n } });
  await s.client.send("MAIL FROM:<s@x.test>\r\n");
  assertEquals((await s.client.reply()).slice(0, 3), "250");
  let rcpts = "";
  for (let i = 0; i < n; i++) rcpts += `RCPT TO:<u${i}@d.test>\r\n`;
  const iterated = await countingArrayIteration(async () => {
    await s.client.send(rcpts);
    for (let i = 0; i < n; i++) {
      const r = await s.client.reply();
      if (!r.startsWith("250")) throw new Error(`RCPT ${i}: ${r}`);
    }
  });
  // A copy per RCPT iterates n²/2 = 4.5M elements; linear work stays far below 20 per RCPT.
  ok(iterated < 20 * n, `${iterated} array elements iterated for ${n} RCPTs`);
  await s.client.send("DATA\r\n");
  assertEquals((await s.client.reply()).slice(0, 3), "354");
  await s.client.send("hi\r\n.\r\n");
  assertEquals((await s.client.reply()).slice(0, 3), "250");
  assertEquals(s.sink.accepted[0]?.recipients.length, n);
  await s.end();
});
