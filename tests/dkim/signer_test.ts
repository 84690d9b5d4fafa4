/**
 * The signer against an independent verifier: python3-dkim checks every signature, with the
 * public keys served by a real DNS server (dnsmasq) from the TXT records `dkim keygen` prints.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { DkimKeyStore, type KeyEntry, txtStrings } from "../../src/dkim/keys.ts";
import { authorDomain, DkimSigner, type DkimSignerOptions } from "../../src/dkim/signer.ts";
import type { Canonicalization } from "../../src/dkim/canon.ts";
import { verifyDkim, verifyDkimBatch } from "../_helpers/dkim.ts";
import { startDnsmasq } from "../_helpers/dnsmasq.ts";
import { toolTest } from "../_helpers/tools.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { loadNodeCrypto } from "../../src/auth/node_crypto.ts";

// The synchronous computations under test take node:crypto once it is loaded.
await loadNodeCrypto();

const enc = (s: string) => new TextEncoder().encode(s);
const NOW = new Date("2026-11-28T06:00:00Z");

/** Messages that have tripped signers: each must verify under every canonicalization. */
const MESSAGES: { what: string; bytes: Uint8Array }[] = [
  {
    what: "plain",
    bytes: enc(
      "From: Alice <alice@example.org>\r\nTo: bob@example.net\r\nSubject: hi\r\n\r\nHello\r\n",
    ),
  },
  {
    what: "folded headers and WSP runs",
    bytes: enc(
      "From: Alice\r\n <alice@example.org>\r\nTo: bob@example.net,\r\n\tcarol@example.net\r\n" +
        "Subject:   a\t\tfolded  \r\n   subject  \r\n\r\nbody\r\n",
    ),
  },
  {
    what: "trailing whitespace and trailing empty lines in the body",
    bytes: enc("From: a@example.org\r\n\r\nline  \t\r\n  indented\r\n\r\n \r\n\r\n\r\n"),
  },
  { what: "empty body", bytes: enc("From: a@example.org\r\nSubject: empty\r\n\r\n") },
  { what: "no body and no empty line", bytes: enc("From: a@example.org\r\nSubject: none\r\n") },
  {
    what: "8-bit header and body",
    bytes: Uint8Array.from([
      ...enc("From: =?utf-8?q?J=C3=B6rg?= <j@example.org>\r\nSubject: "),
      0xc3,
      0xa4,
      ...enc("\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"),
      0xe2,
      0x82,
      0xac,
      0xff,
      0x00,
      ...enc("\r\n"),
    ]),
  },
  {
    what: "long lines (990 bytes) and a 200 KB body",
    bytes: enc(
      "From: a@example.org\r\nX-Long: " + "x".repeat(980) + "\r\n\r\n" +
        ("y".repeat(990) + "\r\n").repeat(200),
    ),
  },
  {
    what: "duplicate headers (bottom-up selection) and a header the list does not sign",
    bytes: enc(
      "Received: from x\r\nFrom: a@example.org\r\nTo: one@example.net\r\nTo: two@example.net\r\n" +
        "X-Other: kept out\r\n\r\nbody\r\n",
    ),
  },
];

const CANONS: { header: Canonicalization; body: Canonicalization }[] = [
  { header: "relaxed", body: "relaxed" },
  { header: "relaxed", body: "simple" },
  { header: "simple", body: "relaxed" },
  { header: "simple", body: "simple" },
];

/** Signs `message` fed in chunks of `chunkBytes`; returns the signed message. */
async function sign(
  message: Uint8Array,
  keys: Parameters<DkimSigner["finish"]>[0],
  opts: DkimSignerOptions & { chunkBytes?: number } = {},
): Promise<Uint8Array> {
  const signer = new DkimSigner(opts);
  const step = opts.chunkBytes ?? 1000;
  for (let i = 0; i < message.length; i += step) signer.update(message.subarray(i, i + step));
  const result = await signer.finish(keys, NOW);
  assert(result.ok, result.ok ? "" : result.reason);
  return Uint8Array.from([...result.fields, ...message]);
}

function dnsTxt(entries: readonly KeyEntry[]) {
  return entries.map((e) => ({ name: e.dnsName, strings: txtStrings(e.dnsText) }));
}

await toolTest(
  "DkimSigner: rsa-sha256 and ed25519-sha256 signatures verify with python3-dkim, keys from DNS",
  ["dkimverify", "dnsmasq"],
  async (t) => {
    await withTempDataDir(async (dir) => {
      const store = new DkimKeyStore(dir);
      const entries = [
        await store.generate("example.org", "rsa1", "rsa"),
        await store.generate("example.org", "ed1", "ed25519"),
      ];
      await using dns = await startDnsmasq({ txt: dnsTxt(entries) });
      const keys = await store.keysFor("example.org");
      assertEquals(keys.map((k) => k.algorithm), ["ed25519-sha256", "rsa-sha256"]);
      const cases = CANONS.flatMap((canon) => MESSAGES.map((m) => ({ canon, m })));
      const items = [];
      for (const { canon, m } of cases) {
        const signed = await sign(m.bytes, keys, { canonicalization: canon, chunkBytes: 7 });
        items.push(...[0, 1].map((index) => ({ message: signed, index })));
      }
      const results = await verifyDkimBatch(items, { dns: dns.address });
      for (const [i, { canon, m }] of cases.entries()) {
        await t.step(`${canon.header}/${canon.body}: ${m.what}`, () => {
          for (const index of [0, 1]) {
            const r = results[i * 2 + index];
            assert(r?.ok, `signature ${index}: ${r?.output}`);
          }
        });
      }
    });
  },
);

await toolTest(
  "DkimSigner: a changed body or a changed signed header fails verification",
  ["dkimverify"],
  async (t) => {
    await withTempDataDir(async (dir) => {
      const store = new DkimKeyStore(dir);
      const [entry] = [await store.generate("example.org", "ed1", "ed25519")];
      const txt = { [entry.dnsName]: entry.dnsText };
      const keys = await store.keysFor("example.org");
      const signed = new TextDecoder().decode(await sign(MESSAGES[0]!.bytes, keys));
      const rows = [
        { what: "control: the untouched message verifies", text: signed, want: true },
        { what: "changed body: fails", text: signed.replace("Hello", "Hullo"), want: false },
        {
          what: "changed subject: fails",
          text: signed.replace("Subject: hi", "Subject: ho"),
          want: false,
        },
        {
          what: "a second From added on top: fails",
          text: signed.replace("From:", "From: x@evil.example\r\nFrom:"),
          want: false,
        },
      ];
      const results = await verifyDkimBatch(
        rows.map((r) => ({ message: enc(r.text), index: 0 })),
        { txt },
      );
      for (const [i, row] of rows.entries()) {
        await t.step(row.what, () => {
          assert(row.want || row.text !== signed);
          assertEquals(results[i]?.ok, row.want, results[i]?.output);
        });
      }
    });
  },
);

await toolTest(
  "DkimSigner: relaxed survives re-folding and added trailing whitespace, simple does not",
  ["dkimverify"],
  async () => {
    await withTempDataDir(async (dir) => {
      const store = new DkimKeyStore(dir);
      const entry = await store.generate("example.org", "r", "rsa");
      const txt = { [entry.dnsName]: entry.dnsText };
      const keys = await store.keysFor("example.org");
      const message = MESSAGES[0]!.bytes;
      const mangle = (b: Uint8Array) =>
        enc(
          new TextDecoder().decode(b).replace("Subject: hi", "Subject:\r\n  hi").replace(
            "Hello\r\n",
            "Hello  \r\n",
          ),
        );
      const relaxed = await sign(message, keys);
      assert((await verifyDkim(mangle(relaxed), { txt })).ok);
      const simple = await sign(message, keys, {
        canonicalization: { header: "simple", body: "simple" },
      });
      assert(!(await verifyDkim(mangle(simple), { txt })).ok);
    });
  },
);

Deno.test("DkimSigner: a header section over the limit is refused, not signed", async () => {
  const signer = new DkimSigner({ maxHeaderBytes: 64 });
  signer.update(enc("From: a@example.org\r\nX: " + "a".repeat(64) + "\r\n\r\nbody\r\n"));
  assertEquals(await signer.finish([], NOW), { ok: false, reason: "header_too_large" });
});

Deno.test("DkimSigner: finish without a key says so", async () => {
  const signer = new DkimSigner();
  signer.update(MESSAGES[0]!.bytes);
  assertEquals(await signer.finish([], NOW), { ok: false, reason: "no_key" });
});

Deno.test("authorDomain: the domain of the first From address", async (t) => {
  const rows = [
    { from: "From: Alice <Alice@Example.ORG>", want: "example.org" },
    { from: "From: alice@example.org", want: "example.org" },
    { from: 'From: "x@y.example" <a@b.example>', want: "b.example" },
    // Only the addr-spec counts (RFC 5322 §3.4), as submission's <> From check reads it
    // (src/wire/mailbox_list.ts): an address in a display name or comment is text.
    { from: 'From: "x@evil.example," <me@mine.example>', want: "mine.example" },
    { from: "From: me@mine.example (boss@evil.example)", want: "mine.example" },
    { from: "From: a@first.example, b@second.example", want: "first.example" },
    // No mailbox-list (words after the address, a group): no domain, never a guess.
    { from: "From: <a@b.example> c@evil.example", want: undefined },
    { from: "From: team: a@b.example;", want: undefined },
    { from: "From: Alice\r\n <a@folded.example>", want: "folded.example" },
    { from: "Subject: none", want: undefined },
    // RFC 6532 (SMTPUTF8 mail): a U-label domain is its A-label, as the keys are stored.
    { from: "From: Jörg <j@bücher.example>", want: "xn--bcher-kva.example" },
    { from: "From: j@BÜCHER.example.", want: "xn--bcher-kva.example" },
  ];
  for (const row of rows) {
    await t.step(row.from.replace(/\r\n/g, "\\r\\n"), () => {
      const signer = new DkimSigner();
      signer.update(enc(`${row.from}\r\n\r\nbody\r\n`));
      const fields = signer.headerFields();
      assert(fields !== undefined);
      assertEquals(authorDomain(fields), row.want);
    });
  }
});
