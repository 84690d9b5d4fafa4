/**
 * (#10 item 8) RFC 4954 §4 on the ODMR port of the real `serve`: an AUTH command line, and a
 * line of the exchange, may be 12288 octets (CRLF included); one octet more is refused with a
 * clear reply and the session goes on. Other commands keep RFC 5321's 512.
 */
import { match as assertMatch } from "node:assert/strict";
import { Buffer } from "node:buffer";
import { MAX_AUTH_LINE_BYTES } from "../../src/smtp/auth_exchange.ts";
import { MAX_COMMAND_BYTES } from "../../src/odmr/provider.ts";
import { addUser, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { RawClient } from "../security/_raw.ts";

/** `AUTH SCRAM-SHA-256 <client-first>` padded with spaces to `octets` (CRLF included). */
function scramAuthLine(octets: number): string {
  const verb = "AUTH SCRAM-SHA-256 ";
  // Base64 comes in quads: fill with the nonce, then spaces (allowed between the arguments).
  const quads = Math.floor((octets - verb.length - 2) / 4);
  const rawBytes = quads * 3;
  const prefix = "n,,n=alice,r=";
  const b64 = Buffer.from(prefix + "x".repeat(rawBytes - prefix.length)).toString("base64");
  const spaces = " ".repeat(octets - verb.length - 2 - b64.length);
  return `${verb}${spaces}${b64}`;
}

Deno.test("(#10) ODMR: AUTH lines of 12288 octets are read, 12289 get 500, other commands 512", async (t) => {
  const server = await startServer();
  try {
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    const c = await RawClient.connect(server.odmr[0]!.port);
    try {
      assertMatch(await c.reply(), /^220 /);
      assertMatch(await c.command("EHLO customer.test"), /^250 /);
      await t.step("AUTH command line: N octets → the exchange goes on (334)", async () => {
        const line = scramAuthLine(MAX_AUTH_LINE_BYTES);
        if (line.length + 2 !== MAX_AUTH_LINE_BYTES) throw new Error("test line length");
        assertMatch(await c.command(line), /^334 /);
        assertMatch(await c.command("*"), /^501 /); // cancel
      });
      await t.step("AUTH command line: N+1 octets → 500 5.5.2, session goes on", async () => {
        assertMatch(await c.command(scramAuthLine(MAX_AUTH_LINE_BYTES + 1)), /^500 5\.5\.2 /);
        assertMatch(await c.command("NOOP"), /^250 /);
      });
      await t.step("a response line of N octets is read (bad base64: 501 5.5.2)", async () => {
        assertMatch(await c.command("AUTH SCRAM-SHA-256"), /^334 /);
        assertMatch(await c.command("A".repeat(MAX_AUTH_LINE_BYTES - 2)), /^501 5\.5\.2 /);
      });
      await t.step("a response line of N+1 octets → 500 5.5.6", async () => {
        assertMatch(await c.command("AUTH SCRAM-SHA-256"), /^334 /);
        assertMatch(await c.command("A".repeat(MAX_AUTH_LINE_BYTES - 1)), /^500 5\.5\.6 /);
        assertMatch(await c.command("NOOP"), /^250 /);
      });
      await t.step("another command: 512 octets are read, 513 get 500 5.5.2", async () => {
        const ehlo = (n: number) => `EHLO ${"a".repeat(n - 7)}`;
        assertMatch(await c.command(ehlo(MAX_COMMAND_BYTES)), /^250 /);
        assertMatch(await c.command(ehlo(MAX_COMMAND_BYTES + 1)), /^500 5\.5\.2 /);
      });
    } finally {
      c.close();
    }
  } finally {
    await server.stop();
    await removeTestFiles(server);
  }
});
