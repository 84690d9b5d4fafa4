/**
 * `odmr.require_tls: true` offers AUTH only after TLS, so it needs `tls.cert` and `tls.key`:
 * without them serve started, offered no STARTTLS and answered every AUTH with "530 5.7.0
 * Must issue a STARTTLS command first", so no customer could ever collect. Refused at load
 * with the key, like an implicit-TLS listener without a certificate; fine without ODMR
 * listeners (nothing to authenticate).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { refusalOf } from "./_parse.ts";

Deno.test("odmr.require_tls: true needs tls.cert and tls.key", () => {
  assertEquals(
    refusalOf("odmr: {require_tls: true}"),
    `Cannot load config "/etc/odmr.yaml": odmr.require_tls is true, which needs tls.cert and ` +
      `tls.key to be set (AUTH is offered only after STARTTLS or on implicit TLS)`,
  );
  assertEquals(refusalOf("odmr: {require_tls: false}"), undefined);
  assertEquals(refusalOf("tls: {cert: c.pem, key: k.pem}\nodmr: {require_tls: true}"), undefined);
  assertEquals(refusalOf("odmr: {listen: [], require_tls: true}"), undefined);
});
