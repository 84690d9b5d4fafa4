/**
 * E2E (#11): the MX logs one `queued` line per accepted message (id, client, helo, tls, from,
 * every to, size) and one `refused` line per refusal with the client and the reply, asserted by
 * field, in text and JSON formats; a hostile HELO cannot forge a field.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { addUser, queueList, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { eventsNamed, listOf, parseLogLine } from "../_helpers/log_lines.ts";
import { RawClient } from "../security/_raw.ts";

for (const format of ["text", "json"] as const) {
  Deno.test(`serve logs queued and refused lines by field (${format}, #11)`, async () => {
    const server = await startServer({ config: { log: { format } } });
    try {
      await addUser(server.configPath, "alice", ["example.org"]);
      const c = await RawClient.connect(server.smtp[0]!.port, "127.0.0.7");
      // Only the first word is the HELO name; the rest must not become fields either.
      const helo = "evil.test";
      try {
        match(await c.reply(), /^220 /);
        match(await c.command(`EHLO ${helo} client=203.0.113.9 tls="true"`), /^250 /);
        match(await c.command("MAIL FROM:<sender@remote.test>"), /^250 /);
        match(await c.command("RCPT TO:<a@example.org>"), /^250 /);
        match(await c.command("RCPT TO:<x@elsewhere.test>"), /^550 5\.7\.1 /);
        match(await c.command("RCPT TO:<B@Example.org>"), /^250 /);
        match(await c.command("DATA"), /^354 /);
        match(await c.command("Subject: t\r\n\r\nhello\r\n."), /^250 /);
        match(await c.command("QUIT"), /^221 /);
      } finally {
        c.close();
      }
      const [id] = (await queueList(server.configPath) as { id: string }[]).map((m) => m.id);
      const logs = server.logs();
      const queued = eventsNamed(logs, "queued");
      assertEquals(queued.length, 1, logs);
      const q = queued[0]!;
      assertEquals(q.level, "info");
      assertEquals(q.id, id);
      assertEquals(q.client, "127.0.0.7");
      assertEquals(q.helo, helo);
      assertEquals(q.tls, "false");
      assertEquals(q.from, "sender@remote.test");
      assertEquals(listOf(q, "to"), ["a@example.org", "B@example.org"]);
      assert(Number(q.size) > "Subject: t\r\n\r\nhello\r\n".length, `size=${q.size}`);
      // (#13) One info line per accepted message (besides the refused recipient's): each
      // line costs the MX's ingest a write.
      const aboutIt = logs.split("\n").map(parseLogLine)
        .filter((e) => e !== undefined && e.id === id && e.level !== "debug")
        .filter((e) => e?.domain !== "elsewhere.test" && e?.to !== "x@elsewhere.test")
        .map((e) => e?.event);
      assertEquals(aboutIt, ["queued"], logs);
      // Nor one more for the connection the client ended with QUIT (#13).
      assertEquals(eventsNamed(logs, "smtp_session_end"), [], logs);
      const refused = eventsNamed(logs, "refused");
      assertEquals(refused.length, 1, logs);
      const r = refused[0]!;
      assertEquals(r.level, "info", "a peer's mistake is not an error");
      assertEquals(r.client, "127.0.0.7");
      assertEquals(r.to, "x@elsewhere.test");
      match(String(r.reply), /^550 5\.7\.1 /);
      if (format === "text") {
        const line = logs.split("\n").find((l) => l.includes("event=queued")) ?? "";
        assertEquals(line.split("client=").length, 2, `one client= only: ${line}`);
      }
    } finally {
      assertEquals(await server.stop(), 0);
      await removeTestFiles(server);
    }
  });
}
