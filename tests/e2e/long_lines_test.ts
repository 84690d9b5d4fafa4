/**
 * `smtp.max_line_length` on the real `serve` (#10, README "Long lines"): a body line of N
 * octets (without CRLF) is queued, N+1 gets `554 5.6.0` and nothing is queued — with the
 * default (998, the most that DATA can carry on to the customer) and a stricter setting.
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { addUser, queueList, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { submit } from "../_helpers/smtp_submit.ts";

const enc = new TextEncoder();

async function withServer(
  smtp: Record<string, unknown>,
  fn: (port: number, configPath: string) => Promise<void>,
): Promise<void> {
  const server = await startServer({ config: { smtp } });
  try {
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    await fn(server.smtp[0]!.port, server.configPath);
  } finally {
    assertEquals(await server.stop(), 0, server.logs());
    await removeTestFiles(server);
  }
}

async function send(port: number, lineOctets: number): Promise<string> {
  const body = enc.encode(`Subject: long\r\n\r\n${"x".repeat(lineOctets)}\r\n`);
  const r = await submit({ port, from: "s@sender.test", to: ["u@example.org"], body });
  return r.final ?? r.replies.join(" | ");
}

for (const limit of [998, 100]) {
  Deno.test(`serve with smtp.max_line_length ${limit}: a line of N octets is queued, N+1 is 554 5.6.0 (#10)`, async () => {
    await withServer(limit === 998 ? {} : { "max_line_length": limit }, async (port, config) => {
      assertMatch(await send(port, limit), /^250 /);
      assertMatch(await send(port, limit + 1), /^554 5\.6\.0 /);
      assertEquals((await queueList(config) as unknown[]).length, 1);
    });
  });
}
