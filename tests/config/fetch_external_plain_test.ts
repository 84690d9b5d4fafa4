/**
 * `fetch.client_cert` is used only over TLS (AUTH EXTERNAL is never sent in plaintext), so with
 * `fetch.tls: none` and no `fetch.password_file` fetch had no way to log in: every poll ended
 * with exit 3 (authentication failed). Refused at load naming the key (exit 2); with a password
 * file as well it loads (the password is used).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { refusalOf } from "./_parse.ts";
const CERT = "server: r.example, user: a, client_cert: pi.pem, client_key: pi.key";

Deno.test("fetch.tls: none with only a client certificate is refused; with a password it loads", () => {
  assertEquals(
    refusalOf(`fetch: {${CERT}, tls: none}`),
    `Cannot load config "/etc/odmr.yaml": fetch.client_cert is used only over TLS (AUTH ` +
      `EXTERNAL is never sent in plaintext): with fetch.tls: none, set fetch.password_file`,
  );
  assertEquals(refusalOf(`fetch: {${CERT}, tls: none, password_file: pw}`), undefined);
  assertEquals(refusalOf(`fetch: {${CERT}, tls: starttls}`), undefined);
  assertEquals(refusalOf(`fetch: {${CERT}, tls: implicit}`), undefined);
  assertEquals(refusalOf(`fetch: {${CERT}}`), undefined);
});
