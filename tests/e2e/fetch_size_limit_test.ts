/**
 * A message as large as the MX takes must reach the customer: the provider stores it with its
 * own `Received:` header on top, so the customer's limit must leave room for more than the MX's
 * `smtp.max_message_size` (both sides at their defaults here, `fetch` into a Maildir).
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { addUser, queueList, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { runFetchOnce } from "../_helpers/fetch_process.ts";
import { submit } from "../_helpers/smtp_submit.ts";

const enc = new TextEncoder();
/** `smtp.max_message_size`'s default (README.md). */
const DEFAULT_LIMIT = 50 * 1024 * 1024;

/** A body of exactly `size` octets in 100-octet lines, its last line "…yyy". */
function bodyOf(size: number): Uint8Array {
  const head = enc.encode("Subject: at the limit\r\n\r\n");
  const line = enc.encode("x".repeat(98) + "\r\n");
  const body = new Uint8Array(size);
  body.set(head);
  const rest = (size - head.length) % line.length + line.length;
  for (let at = head.length; at + rest < size; at += line.length) body.set(line, at);
  body.set(enc.encode("y".repeat(rest - 2) + "\r\n"), size - rest);
  return body;
}

Deno.test("fetch takes a message of the MX's largest size (defaults on both sides), never bounced", async () => {
  const server = await startServer({});
  const dir = await Deno.makeTempDir({ prefix: "odmr-fetch-size-" });
  try {
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    const body = bodyOf(DEFAULT_LIMIT);
    const r = await submit({
      port: server.smtp[0]!.port,
      from: "s@remote.test",
      to: ["a@example.org"],
      body,
      timeoutMs: 60_000,
    });
    assert(r.final?.startsWith("250"), `the MX takes it: ${r.replies.join(" | ")}`);

    const run = await runFetchOnce(dir, {
      server: `127.0.0.1:${server.odmr[0]!.port}`,
      domains: ["example.org"],
      "deliver_to": `maildir:${dir}/Maildir`,
    });
    assertEquals(run.code, 0, run.stderr);
    const names: string[] = [];
    try {
      for await (const e of Deno.readDir(`${dir}/Maildir/new`)) names.push(e.name);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    assertEquals(names.length, 1, `delivered into the Maildir: ${run.stderr}`);
    const file = await Deno.open(`${dir}/Maildir/new/${names[0]}`);
    try {
      const size = (await file.stat()).size;
      assert(size > DEFAULT_LIMIT - DEFAULT_LIMIT / 100 * 2, `the whole message: ${size}`);
      const tail = new Uint8Array(20);
      await file.seek(size - tail.length, Deno.SeekMode.Start);
      await file.read(tail);
      assertEquals(new TextDecoder().decode(tail), "y".repeat(19) + "\n");
    } finally {
      file.close();
    }
    // Neither failed on the provider nor bounced to its sender.
    assertEquals(await queueList(server.configPath), []);
  } finally {
    await server.stop();
    await removeTestFiles(server);
    await Deno.remove(dir, { recursive: true });
  }
});
