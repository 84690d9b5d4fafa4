/**
 * The DKIM signer's author domain (the `d=` it signs with) is undefined for a header section
 * with more than one From field (RFC 5322 §3.6 allows one): it took the first one's domain, so a
 * message queued with two From fields went out under that domain's signature, showing the other
 * author to readers that display the second (DMARC spoofing). Submission refuses such messages
 * (tests/submission/two_from_test.ts); this covers mail queued before that check.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { authorDomain, DkimSigner } from "../../src/dkim/signer.ts";
import { loadNodeCrypto } from "../../src/auth/node_crypto.ts";

// The synchronous computations under test take node:crypto once it is loaded.
await loadNodeCrypto();

const enc = new TextEncoder();

Deno.test("authorDomain: none for two From fields, the one domain for one", () => {
  const rows = [
    { head: "From: a@example.org\r\nFrom: ceo@bank.example\r\n", want: undefined },
    { head: "from: a@example.org\r\nSubject: x\r\nFROM : ceo@bank.example\r\n", want: undefined },
    { head: "From: a@example.org\r\nSubject: x\r\n", want: "example.org" },
    { head: "From: a@example.org\r\nReply-To: ceo@bank.example\r\n", want: "example.org" },
  ];
  for (const row of rows) {
    const signer = new DkimSigner();
    signer.update(enc.encode(`${row.head}\r\nFrom: body text\r\n`));
    const fields = signer.headerFields();
    assert(fields !== undefined);
    assertEquals(authorDomain(fields), row.want, row.head);
  }
});
