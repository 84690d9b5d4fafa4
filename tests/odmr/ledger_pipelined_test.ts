// The customer's ledger over a pipelined drain into a local SMTP server (#13): each local
// refusal of a RCPT is counted once, at its RCPT, and a message counts only when the local
// server took a recipient.
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { withCapturedSink } from "../_helpers/captured_sink.ts";
import { LedgerSink } from "../../src/odmr/_customer_ledger.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { startReady } from "../smtp/_session.ts";
import { windowMessage } from "../_helpers/window_message.ts";

const code = (reply: string) => reply.slice(0, 3);

Deno.test("customer ledger (#13): refusals of pipelined RCPTs are counted once, a message without recipients is none", async () => {
  const rcptReply = (address: string) =>
    address.startsWith("x") ? "550 5.1.1 No such user here" : undefined;
  const timeouts = { commandMs: 5_000, dataFinalMs: 5_000 };
  await withCapturedSink({ rcptReply }, async (sink, capture) => {
    const ledger = new LedgerSink(sink, "capture", NULL_LOGGER);
    const session = await startReady({ otherSink: ledger });
    try {
      await session.client.send(
        windowMessage(1, ["x1@example.org"]) +
          windowMessage(2, ["m2@example.org", "x2@example.org"]),
      );
      assertEquals((await session.client.replies(9)).map(code), [
        ...["250", "250", "550", "554"],
        ...["250", "250", "250", "550", "250"],
      ]);
      assertEquals(capture.messages.length, 1);
      assertEquals(ledger.counts, {
        messages: 1,
        delivered: 1,
        deferred: 0,
        failed: 2,
        foreign: 0,
        split: 0,
      });
    } finally {
      await session.end();
    }
  }, { timeouts });
});
