/**
 * The provider session's command table (#12): each verb is allowed in its states only, and
 * out of them gets the reply the table names; the lease of an ATRN is released however the
 * reversal ends — over an in-memory Conn with a temp database.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { LineReader } from "../../src/wire/line_reader.ts";
import type { Conn } from "../../src/net/conn.ts";
import { ConnClosedError } from "../../src/net/conn.ts";
import { cramResponse } from "../../src/auth/cram_md5.ts";
import { decodeBase64, encodeBase64 } from "../../src/wire/base64.ts";
import { connPair } from "../_helpers/conn_pair.ts";
import { runTestProvider, withProviderStores } from "../_helpers/test_provider.ts";
import { MAX_AUTH_FAILURES } from "../../src/odmr/provider.ts";
import type { ProviderStores } from "../_helpers/test_provider.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
// Without an initial response: the server answers 334 and waits (cancelled with "*").
const AUTH_OK = "AUTH SCRAM-SHA-256";

/** The last line of the next reply, or how the reading ended ("eof", …). */
async function lastLine(reader: LineReader): Promise<string> {
  for (;;) {
    const r = await reader.readLine(4096, 2_000);
    if (r.kind !== "line") return r.kind;
    const text = dec.decode(r.line);
    if (text[3] !== "-") return text;
  }
}

/** A reply line's code and enhanced code ("535 5.7.8"; "250" without one). */
function codeOf(line: string): string {
  return line.replace(/^(\d{3} (?:\d\.\d\.\d )?).*$/, "$1").trim();
}

/** Sends each line; returns each reply's code and enhanced code (greeting first). */
async function dialog(lines: readonly string[], stores: ProviderStores) {
  const { server, client } = connPair();
  const done = runTestProvider(server, stores, { options: { commandTimeoutMs: 2_000 } });
  const reader = new LineReader(client);
  const readReply = async () => codeOf(await lastLine(reader));
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

/** `conn`, except that writing the ATRN `250` fails as on a connection the peer closed. */
function failingAtReversal(conn: Conn): Conn {
  return new Proxy(conn, {
    get(target, prop) {
      if (prop === "write") {
        return (bytes: Uint8Array, opts?: { flush?: boolean }) =>
          dec.decode(bytes).includes("reversing")
            ? Promise.reject(new ConnClosedError("peer gone"))
            : target.write(bytes, opts);
      }
      const value = Reflect.get(target, prop, target);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
}

Deno.test("(#12) provider: the lease is released when the 250 to ATRN cannot be written", async () => {
  await withProviderStores(async ({ store, credentials }) => {
    const w = await store.begin({
      mailFrom: "s@sender.test",
      params: {},
      recipients: [{ address: "a@example.org", domain: "example.org" }],
    });
    await w.write(enc.encode("Subject: hi\r\n\r\nbody\r\n"));
    await w.commit();

    const { server, client } = connPair();
    const done = runTestProvider(failingAtReversal(server), { store, credentials });
    const reader = new LineReader(client);
    const readReply = () => lastLine(reader);
    const say = async (line: string) => {
      await client.write(enc.encode(`${line}\r\n`));
      return await readReply();
    };
    const codes = [await readReply(), await say("EHLO c.test")];
    const challenge = await say("AUTH CRAM-MD5");
    codes.push(challenge);
    const response = cramResponse(
      "alice",
      "alice-pw",
      decodeBase64(challenge.slice(4)) ?? new Uint8Array(),
    );
    codes.push(await say(encodeBase64(response)), await say("ATRN example.org"));
    await done;
    // The 250 never reached the customer; the session ended without draining.
    assertEquals(codes.map((c) => c.slice(0, 3)), ["220", "250", "334", "235", "eof"]);
    // Released, not held until its expiry: the next ATRN finds the mail waiting.
    const again = await store.claim(["example.org"], { owner: "next", leaseSeconds: 60 });
    assertEquals(again.kind, "claimed");
    if (again.kind === "claimed") await again.lease.release();
    assertEquals((await store.list()).length, 1);
  });
});

Deno.test("(#12) provider: MAX_AUTH_FAILURES failed AUTHs: the last but one gets 535, the last 421 and the end", async () => {
  await withProviderStores(async (stores) => {
    const { server, client } = connPair();
    const done = runTestProvider(server, stores);
    const reader = new LineReader(client);
    const say = async (line: string) => {
      await client.write(enc.encode(`${line}\r\n`));
      return await lastLine(reader);
    };
    const got = [await lastLine(reader), await say("EHLO c.test")];
    for (let i = 0; i < MAX_AUTH_FAILURES; i++) {
      const challenge = await say("AUTH CRAM-MD5");
      const bytes = decodeBase64(challenge.slice(4)) ?? new Uint8Array();
      got.push(await say(encodeBase64(cramResponse("alice", "wrong", bytes))));
    }
    got.push(await lastLine(reader));
    await done;
    const codes = got.map(codeOf);
    assertEquals(codes, [
      "220",
      "250",
      ...Array(MAX_AUTH_FAILURES - 1).fill("535 5.7.8"),
      "421 4.7.0",
      "eof",
    ]);
  });
});
