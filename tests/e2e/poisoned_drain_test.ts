/**
 * A stored message the drain cannot relay (bare CR, bare LF, a line over 998 octets) costs
 * only itself: real `serve` and `fetch --once` processes, the poisoned messages written into
 * the queue directly (the MX refuses such bodies), a good one queued after them over SMTP.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { addUser, queueList, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { runFetchOnce } from "../_helpers/fetch_process.ts";
import { submit } from "../_helpers/smtp_submit.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

const POISONED: { readonly to: string; readonly body: Uint8Array }[] = [
  { to: "bare-lf@example.org", body: enc.encode("Subject: lf\r\n\r\nsmuggled\n.\r\nMAIL\r\n") },
  { to: "bare-cr@example.org", body: enc.encode("Subject: cr\r\n\r\nsmuggled\r.\rRSET\r\n") },
  {
    to: "long-line@example.org",
    body: enc.encode(`Subject: long\r\n\r\n${"x".repeat(1200)}\r\n`),
  },
];

type Listed = { id: string; from: string; recipients: { address: string; status: string }[] }[];

Deno.test("fetch --once: 3 poisoned stored messages before a good one cost only themselves (#10)", async () => {
  const server = await startServer();
  const dir = await Deno.makeTempDir({ prefix: "odmr-poison-e2e-" });
  const capture = await startCaptureServer();
  try {
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    // The poisoned messages' sender is local (bob's domain): each failure gets a DSN there.
    await addUser(server.configPath, "bob", ["bob.example"], "bob-pw");
    // Written as a pre-fix MX (or a BDAT hole) would have stored them; serve shares the file.
    const store = new SqliteQueueStore(openDatabase(server.dataDir));
    try {
      for (const p of POISONED) {
        const writer = await store.begin({
          mailFrom: "s@bob.example",
          params: {},
          recipients: [{ address: p.to, domain: "example.org" }],
        });
        await writer.write(p.body);
        await writer.commit();
      }
    } finally {
      await store.close();
    }
    const good = enc.encode("Subject: good\r\n\r\nhello\r\n");
    const r = await submit({
      port: server.smtp[0]!.port,
      from: "s@remote.test",
      to: ["good@example.org"],
      body: good,
    });
    assert(r.final?.startsWith("250"), r.replies.join(" | "));

    const run = await runFetchOnce(dir, {
      server: `127.0.0.1:${server.odmr[0]!.port}`,
      domains: ["example.org"],
      "deliver_to": `smtp://127.0.0.1:${capture.port}`,
    });
    assertEquals(run.code, 0, run.stderr);
    assertEquals(capture.messages.map((m) => m.recipients), [["good@example.org"]]);
    // Nothing of a poisoned body reached the local side.
    assertEquals(capture.messages.length, 1);

    const left = await queueList(server.configPath) as Listed;
    const status = left.flatMap((m) => m.recipients.map((x) => `${x.address} ${x.status}`));
    assertEquals(
      status.sort(),
      [...POISONED.map((p) => `${p.to} failed`), ...POISONED.map(() => "s@bob.example queued")]
        .sort(),
    );
    // One failure report per poisoned message, from <>, saying why (as for expiry).
    const reports = left.filter((m) => m.from === "");
    assertEquals(reports.length, 3);
    const reader = new SqliteQueueStore(openDatabase(server.dataDir));
    let report = "";
    try {
      for await (const chunk of reader.readBody(reports[0]!.id)) report += dec.decode(chunk);
    } finally {
      await reader.close();
    }
    assert(/Action: failed\r\nStatus: 5\.6\.0\r\n/.test(report), report);
    assert(/Diagnostic-Code: smtp; 554 5\.6\.0 /.test(report), report);
    assert(/message_not_relayable/.test(server.logs()), "the provider logs why");
  } finally {
    await capture.close();
    await server.stop();
    await removeTestFiles(server);
    await Deno.remove(dir, { recursive: true });
  }
});
