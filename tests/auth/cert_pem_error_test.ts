/**
 * `user certs NAME --add FILE` with a file that holds no certificate must say so in words an
 * operator can act on, naming the file: it printed the X.509 parser's own "nom error: Eof"
 * (contract review, session 20). A private key or an empty file given by mistake are the usual
 * cases; a PEM block whose base64 is damaged is still named as unreadable.
 */
import { match, throws } from "node:assert/strict";
import { fingerprintOfPem, PinError } from "../../src/auth/cert_pins.ts";
import { loadNodeCrypto } from "../../src/auth/node_crypto.ts";

Deno.test("user certs --add: a file without a certificate is named and explained", async () => {
  await loadNodeCrypto();
  const cases: [string, string, RegExp][] = [
    ["empty", "", /"empty" holds no PEM certificate \(no -----BEGIN CERTIFICATE----- line\)/],
    [
      "key.pem",
      "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIA==\n-----END PRIVATE KEY-----\n",
      /"key\.pem" holds no PEM certificate \(no -----BEGIN CERTIFICATE----- line\)/,
    ],
    [
      "bad.pem",
      "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
      /Cannot read the certificate in "bad\.pem"/,
    ],
  ];
  for (const [file, pem, expected] of cases) {
    throws(() => fingerprintOfPem(pem, file), (err: unknown) => {
      if (!(err instanceof PinError)) return false;
      match(err.message, expected);
      return !/nom error/i.test(err.message);
    });
  }
});
