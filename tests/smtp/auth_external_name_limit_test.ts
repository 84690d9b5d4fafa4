/**
 * A failed AUTH EXTERNAL hands on the authorization identity it was asked for (a throttle key
 * and an `auth_failed` log field) cut at 255 octets of UTF-8, the bound PLAIN, LOGIN, CRAM-MD5
 * and SCRAM-SHA-256 keep (tests/auth/cram_md5_name_limit_test.ts), and never inside a
 * character. It cut at 255 UTF-16 code units: a name of "€" kept 765 octets, and one of
 * U+1F600 was cut between the two halves of a surrogate pair.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { runAuthExchange } from "../../src/smtp/auth_exchange.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { encodeBase64 } from "../../src/wire/base64.ts";
import { connPair } from "../_helpers/conn_pair.ts";
import { withStore } from "../auth/_fixtures.ts";

const enc = new TextEncoder();

/** The user name a failed `AUTH EXTERNAL <authzid>` (no client certificate) hands on. */
async function failedName(authzid: string): Promise<string | undefined> {
  let user: string | undefined;
  await withStore(async (credentials) => {
    const { server } = connPair();
    const outcome = await runAuthExchange({
      args: `EXTERNAL ${encodeBase64(enc.encode(authzid))}`,
      conn: server,
      reader: new LineReader(server),
      offered: ["EXTERNAL"],
      credentials,
      hostname: "relay.example.net",
      timeoutMs: 1_000,
    });
    if (outcome.kind !== "failure") throw new Error(`not a failure: ${outcome.kind}`);
    user = outcome.user;
  });
  return user;
}

Deno.test("a failed AUTH EXTERNAL hands on a name of 255 octets unchanged", async () => {
  for (const name of ["a".repeat(255), "€".repeat(85), "\u{1F600}".repeat(63) + "abc"]) {
    assertEquals(enc.encode(name).length, 255);
    assertEquals(await failedName(name), name);
  }
});

Deno.test("a failed AUTH EXTERNAL cuts a longer name at 255 octets of UTF-8, between characters", async () => {
  const rows = [
    { asked: "a".repeat(300), want: "a".repeat(255), why: "ASCII: 255 characters" },
    { asked: "€".repeat(100), want: "€".repeat(85), why: "3 octets each: 85 characters" },
    { asked: "é".repeat(128), want: "é".repeat(127), why: "256 octets: the last one goes whole" },
    {
      asked: "\u{1F600}".repeat(128),
      want: "\u{1F600}".repeat(63),
      why: "4 octets (a surrogate pair) each: 252 octets, no half character",
    },
  ];
  for (const { asked, want, why } of rows) {
    const got = await failedName(asked);
    assertEquals(got, want, why);
    assertEquals(got !== undefined && enc.encode(got).length <= 255, true, why);
  }
});
