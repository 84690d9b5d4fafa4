/**
 * The provider session's command table (#12): each verb is allowed in its states only, and
 * out of them gets the reply the table names — over an in-memory Conn with a temp database.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { LineReader } from "../../src/wire/line_reader.ts";
import { connPair } from "../_helpers/conn_pair.ts";
import { runTestProvider, withProviderStores } from "../_helpers/test_provider.ts";
import type { ProviderStores } from "../_helpers/test_provider.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
// Without an initial response: the server answers 334 and waits (cancelled with "*").
const AUTH_OK = "AUTH SCRAM-SHA-256";

/** Sends each line; returns each reply's code and enhanced code (greeting first). */
async function dialog(lines: readonly string[], stores: ProviderStores) {
  const { server, client } = connPair();
  const done = runTestProvider(server, stores, { options: { commandTimeoutMs: 2_000 } });
  const reader = new LineReader(client);
  const readReply = async () => {
    for (;;) {
      const r = await reader.readLine(4096, 2_000);
      if (r.kind !== "line") return r.kind;
      const text = dec.decode(r.line);
      if (text[3] !== "-") return text.replace(/^(\d{3} (?:\d\.\d\.\d )?).*$/, "$1").trim();
    }
  };
  const got: string[] = [await readReply()];
  for (const line of lines) {
    await client.write(enc.encode(`${line}\r\n`));
    got.push(await readReply());
  }
  client.destroy();
  await done;
  return got;
}

Deno.test("(#12) provider: every verb in its states only, with the table's reply outside them", async (t) => {
  await withProviderStores(async (stores) => {
    const rows: { why: string; lines: string[]; want: string[] }[] = [
      {
        why: "before EHLO only EHLO/HELO, NOOP, RSET, QUIT work",
        lines: ["AUTH CRAM-MD5", "STARTTLS", "ATRN", "NOOP", "RSET", "QUIT"],
        want: [
          "220",
          "503 5.5.1",
          "503 5.5.1",
          "530 5.7.0",
          "250 2.0.0",
          "250 2.0.0",
          "221 2.0.0",
        ],
      },
      {
        why: "greeted: AUTH starts an exchange, ATRN needs AUTH, STARTTLS is not configured",
        lines: ["EHLO c.test", "ATRN example.org", "STARTTLS", AUTH_OK, "*", "QUIT"],
        want: ["220", "250", "530 5.7.0", "502 5.5.1", "334", "501 5.0.0", "221 2.0.0"],
      },
      {
        why: "unknown and out-of-scope verbs are 502 on the ODMR port",
        lines: ["MAIL FROM:<a@b.test>", "VRFY x", "HELP", "QUIT"],
        want: ["220", "502 5.5.1", "502 5.5.1", "502 5.5.1", "221 2.0.0"],
      },
      {
        why: "syntax errors of EHLO and HELO",
        lines: ["EHLO", "HELO", "HELO c.test", "QUIT"],
        want: ["220", "501 5.5.4", "501 5.5.4", "250", "221 2.0.0"],
      },
    ];
    for (const row of rows) {
      await t.step(row.why, async () => {
        assertEquals(await dialog(row.lines, stores), row.want);
      });
    }
  });
});
