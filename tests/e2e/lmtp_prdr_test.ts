/**
 * One local recipient's refusal never holds back the others (#10): real `serve` and
 * `fetch --once` processes, a scripted LMTP server that answers carol `452 4.2.2` after the
 * body. PRDR between provider and customer carries each LMTP reply upstream.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { addUser, queueList, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import type { CliResult } from "../_helpers/server_process.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { runFetchOnce } from "../_helpers/fetch_process.ts";
import { submit } from "../_helpers/smtp_submit.ts";

const enc = new TextEncoder();

type Listed = { recipients: { address: string; status: string }[] }[];

Deno.test("LMTP: carol's 452 after the body does not hold back dave; she stays deferred (#10)", async () => {
  const server = await startServer();
  const dir = await Deno.makeTempDir({ prefix: "odmr-prdr-e2e-" });
  const lmtp = await startCaptureServer({
    protocol: "lmtp",
    dataReply: (address) =>
      address.startsWith("carol@") ? "452 4.2.2 Mailbox full" : "250 2.0.0 Delivered",
  });
  try {
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    const body = enc.encode("Subject: three\r\n\r\nhello\r\n");
    const r = await submit({
      port: server.smtp[0]!.port,
      from: "s@remote.test",
      to: ["bob@example.org", "carol@example.org", "dave@example.org"],
      body,
    });
    assert(r.final?.startsWith("250"), r.replies.join(" | "));

    const poll = (): Promise<CliResult> =>
      runFetchOnce(dir, {
        server: `127.0.0.1:${server.odmr[0]!.port}`,
        domains: ["example.org"],
        "deliver_to": `lmtp://127.0.0.1:${lmtp.port}`,
      });
    const delivered = () =>
      lmtp.messages.flatMap((m) => m.recipients.filter((_, i) => m.replies[i]?.startsWith("250")));

    // Poll 1: one transaction; bob and dave delivered, carol refused for now.
    const first = await poll();
    assertEquals(first.code, 5, first.stderr); // local delivery deferred some mail
    assertEquals(delivered().sort(), ["bob@example.org", "dave@example.org"]);
    assertEquals(lmtp.messages.map((m) => m.recipients), [[
      "bob@example.org",
      "carol@example.org",
      "dave@example.org",
    ]]);
    const left = await queueList(server.configPath) as Listed;
    assertEquals(left.flatMap((m) => m.recipients.map((x) => `${x.address} ${x.status}`)), [
      "carol@example.org queued",
    ]);

    // Poll 2: only carol is offered again; nobody gets a second copy.
    const second = await poll();
    assertEquals(second.code, 5, second.stderr);
    assertEquals(lmtp.messages.length, 2);
    assertEquals(lmtp.messages[1]?.recipients, ["carol@example.org"]);
    assertEquals(delivered().sort(), ["bob@example.org", "dave@example.org"]);
    const still = await queueList(server.configPath) as Listed;
    assertEquals(still.flatMap((m) => m.recipients.map((x) => x.address)), [
      "carol@example.org",
    ]);
  } finally {
    await lmtp.close();
    await server.stop();
    await removeTestFiles(server);
    await Deno.remove(dir, { recursive: true });
  }
});
