/**
 * E2E with the real fetchmail (`protocol ODMR`, plain) splicing the reversed session to a real
 * Postfix: our provider then talks to Postfix's smtpd, which offers CHUNKING and PIPELINING but
 * not our X-LAST-ENDS-TRANSACTION, so several messages are in flight as BDAT groups, with RSET
 * where the previous outcome is not known. Every third message is only for a recipient Postfix
 * does not know (550, then 554 to its BDAT; Postfix 3 ends that transaction itself, which RFC
 * 3030 does not promise): each other message arrives once, under its own sender, and the
 * refused ones are failed on the provider (#13).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { runFetchmail } from "../_helpers/fetchmail.ts";
import { toolTest } from "../_helpers/tools.ts";
import { queuedStatuses, withPostfixRelay } from "../_helpers/postfix_relay.ts";

const MESSAGES = 24;
const DELIVERY_DEADLINE_MS = 30_000;
/** Every third message is only for a recipient Postfix does not know. */
const isRefused = (i: number) => i % 3 === 1;
const all = Array.from({ length: MESSAGES }, (_, i) => i);
const kept = all.filter((i) => !isRefused(i));

await toolTest(
  "fetchmail splicing to a real Postfix: a message behind one Postfix refused whole arrives once, under its own sender (#13)",
  ["fetchmail", "postfix", "postmap", "postqueue", "sendmail"],
  () =>
    withPostfixRelay({
      what: "fetchmail into a real Postfix",
      messages: all.map((i) => ({
        from: `s${i}@remote.test`,
        to: [isRefused(i) ? `nobody${i}@example.org` : `u${i}@example.org`],
      })),
      known: kept.map((i) => `u${i}@example.org`),
    }, async ({ server, capture, port }) => {
      const run = await runFetchmail({
        port: server.odmr[0]!.port,
        smtpPort: port,
        domains: ["example.org"],
      });
      assert(/CHUNKING/.test(run.output), "Postfix did not offer CHUNKING through fetchmail");
      await capture.waitForMessages(kept.length, DELIVERY_DEADLINE_MS);
      assertEquals(
        capture.messages.map((m) => `${m.mailFrom} ${m.recipients.join()}`).sort(),
        kept.map((i) => `s${i}@remote.test u${i}@example.org`).sort(),
      );
      assertEquals(
        await queuedStatuses(server.configPath, "example.org"),
        all.filter(isRefused).map((i) => `nobody${i}@example.org:failed`).sort(),
      );
    }),
);
