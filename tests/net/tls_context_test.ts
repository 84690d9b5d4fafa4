/**
 * Certificate loading (#11): a broken or mismatched pair is an error naming the config key
 * (`tls.cert`, `tls.key`) and the file at fault,
 * warnings for expiry within 14 days and a certificate not naming `hostname`, and a reload
 * that keeps the old pair when the new files are bad.
 */
import { deepStrictEqual as assertEquals, ok as assert, throws } from "node:assert/strict";
import { toolTest } from "../_helpers/tools.ts";
import { makeRenewal, makeSelfSigned } from "../_helpers/self_signed.ts";
import {
  CertificateError,
  certificateWarnings,
  loadCertificatePair,
  ReloadableTlsContext,
} from "../../src/net/tls_context.ts";

function refusedWith(
  fn: () => unknown,
  file: string,
  message: RegExp,
  keyPath: "tls.cert" | "tls.key",
): void {
  throws(fn, (err: unknown) => {
    assert(err instanceof CertificateError, String(err));
    assertEquals(err.file, file);
    assertEquals((err as { keyPath?: unknown }).keyPath, keyPath);
    assert(message.test(err.message), err.message);
    // The config key first, then the file it names (CONTRACT: errors name the key path).
    assert(err.message.startsWith(`${keyPath} "${file}"`), `names key and file: ${err.message}`);
    return true;
  });
}

await toolTest("loadCertificatePair() refuses broken and mismatched pairs, naming the file (#11)", [
  "openssl",
], async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-tlsctx-" });
  try {
    const a = await makeSelfSigned(dir, "a", { dnsName: "mx.test", days: 90 });
    const b = await makeSelfSigned(dir, "b", { dnsName: "mx.test", days: 90, rsa: true });
    const garbage = `${dir}/garbage.pem`;
    await Deno.writeTextFile(garbage, "this is not PEM\n");
    const brokenPem = `${dir}/broken.pem`;
    await Deno.writeTextFile(
      brokenPem,
      "-----BEGIN CERTIFICATE-----\nAAAAAAAA\n-----END CERTIFICATE-----\n",
    );
    await t.step("a good pair loads", () => {
      const pair = loadCertificatePair(a.cert, a.key);
      assert(pair.notAfter.getTime() > Date.now() + 80 * 86_400_000);
    });
    await t.step("garbage instead of the certificate", () => {
      refusedWith(
        () => loadCertificatePair(garbage, a.key),
        garbage,
        /no PEM certificate/,
        "tls.cert",
      );
    });
    await t.step("a PEM block that is not a certificate", () => {
      refusedWith(
        () => loadCertificatePair(brokenPem, a.key),
        brokenPem,
        /not a valid/,
        "tls.cert",
      );
    });
    await t.step("garbage instead of the key", () => {
      refusedWith(() => loadCertificatePair(a.cert, garbage), garbage, /private key/, "tls.key");
    });
    await t.step("a key of another certificate (EC cert, RSA key)", () => {
      refusedWith(() => loadCertificatePair(a.cert, b.key), b.key, /does not belong/, "tls.key");
    });
    await t.step("a missing file", () => {
      refusedWith(
        () => loadCertificatePair(`${dir}/none.pem`, a.key),
        `${dir}/none.pem`,
        /cannot be read/,
        "tls.cert",
      );
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

await toolTest(
  "certificateWarnings(): expiry within 14 days and a name other than hostname (#11)",
  [
    "openssl",
  ],
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "odmr-tlsctx-" });
    try {
      const a = await makeSelfSigned(dir, "a", { dnsName: "mx.test", days: 30 });
      const pair = loadCertificatePair(a.cert, a.key);
      const certFile = a.cert;
      const day = 86_400_000;
      const at = (msBeforeExpiry: number) => new Date(pair.notAfter.getTime() - msBeforeExpiry);
      assertEquals(
        certificateWarnings(pair, { hostname: "mx.test", certFile, now: at(15 * day) }),
        [],
      );
      // 14 days is the limit: just outside it no warning, just inside one.
      assertEquals(
        certificateWarnings(pair, { hostname: "mx.test", certFile, now: at(14 * day + 1000) }),
        [],
      );
      const soon = certificateWarnings(pair, {
        hostname: "mx.test",
        certFile,
        now: at(14 * day - 1000),
      });
      assertEquals(soon.length, 1);
      assert(/expires in 13 days/.test(soon[0] ?? ""), soon[0]);
      const gone = certificateWarnings(pair, { hostname: "MX.test", certFile, now: at(-day) });
      assert(/expired/.test(gone[0] ?? ""), gone[0]);
      const named = certificateWarnings(pair, { hostname: "relay.example.net", certFile });
      assertEquals(named.length, 1);
      assert(/does not name hostname "relay.example.net"/.test(named[0] ?? ""), named[0]);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

await toolTest("ReloadableTlsContext keeps the old pair when the new files are bad (#11)", [
  "openssl",
], async () => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-tlsctx-" });
  try {
    const { b, live: { cert, key } } = await makeRenewal(dir);
    const slot = new ReloadableTlsContext(cert, key);
    const first = slot.current;
    assertEquals(slot.reloadIfChanged().kind, "unchanged");
    assertEquals(slot.reload().kind, "unchanged");
    // Half a renewal: the new certificate with the old key.
    await Deno.copyFile(b.cert, cert);
    const bad = slot.reloadIfChanged();
    assertEquals(bad.kind, "failed");
    assert(slot.current === first, "the old context is still in use");
    // The same bad files are not retried (nor logged) again until they change.
    assertEquals(slot.reloadIfChanged().kind, "unchanged");
    await Deno.copyFile(b.key, key);
    const good = slot.reloadIfChanged();
    assertEquals(good.kind, "reloaded");
    assert(slot.current !== first);
    assert(slot.pair.notAfter.getTime() > Date.now() + 50 * 86_400_000);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
