/**
 * The customer side's receiver (`fetch`, behind ATRN) refuses a looping message as the MX does:
 * 50 or more Received fields get `554 5.4.6` at the end of data (the provider bounces it), logged
 * as `refused reason=loop`; 49 are delivered. fetch adds no Received field of its own (the local
 * MTA does), so the count is the provider's message's. The real `fetch --once` process against a
 * scripted provider, into a Maildir.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { fetchFromScript } from "../_helpers/fetch_process.ts";

const enc = new TextEncoder();

function withReceived(n: number): Uint8Array {
  let head = "";
  for (let i = 0; i < n; i++) {
    head += `Received: from h${i}.test by r${i}.test; Mon, 30 Nov 2026 02:00:00 +0000\r\n`;
  }
  return enc.encode(`${head}Subject: hops\r\n\r\nbody\r\n`);
}

Deno.test("fetch: a message with 50 Received fields gets 554 5.4.6 from the customer's receiver", async () => {
  const { results, output } = await fetchFromScript([
    { from: "hops49@sender.test", rcpts: ["u@example.org"], body: withReceived(49) },
    { from: "hops50@sender.test", rcpts: ["u@example.org"], body: withReceived(50) },
    {
      from: "hops60@sender.test",
      rcpts: ["u@example.org"],
      body: withReceived(60),
      bdatChunkBytes: 7,
    },
  ]);
  assertEquals(results.map((r) => r.final?.code), [250, 554, 554]);
  assertEquals(results.slice(1).map((r) => r.final?.enhanced), ["5.4.6", "5.4.6"]);
  const refused = output.split("\n").filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => l.event === "refused");
  assertEquals(refused.map((l) => [l.from, l.reason]), [
    ["hops50@sender.test", "loop"],
    ["hops60@sender.test", "loop"],
  ]);
});
