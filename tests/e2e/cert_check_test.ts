/**
 * E2E (#11): a broken certificate no longer passes every check. `check-config` and `serve`
 * parse tls.cert and tls.key and match them, exiting 2 with the file named; a certificate
 * expiring within 14 days or not naming `hostname` is a warning.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { runMain, writeTestConfig } from "../_helpers/server_process.ts";
import { toolTest } from "../_helpers/tools.ts";
import { makeSelfSigned } from "../_helpers/self_signed.ts";

await toolTest("check-config and serve refuse a broken or mismatched certificate (#11)", [
  "openssl",
], async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-certchk-" });
  const files: string[] = [];
  const configFor = async (tls: { cert: string; key: string }, hostname = "mx.test") => {
    const { configPath, dataDir } = await writeTestConfig({ config: { tls, hostname } });
    files.push(configPath, dataDir);
    return configPath;
  };
  try {
    const good = await makeSelfSigned(dir, "good", { dnsName: "mx.test", days: 90 });
    const other = await makeSelfSigned(dir, "other", { dnsName: "mx.test", days: 90 });
    const soon = await makeSelfSigned(dir, "soon", { dnsName: "mx.test", days: 5 });
    const garbage = `${dir}/garbage.pem`;
    await Deno.writeTextFile(garbage, "-----BEGIN CERTIFICATE-----\nnot base64!\n");

    await t.step("a good pair: exit 0, no warning", async () => {
      const r = await runMain(["check-config", "--config", await configFor(good)]);
      assertEquals(r.code, 0, r.stderr);
      assertEquals(r.stderr, "");
    });
    for (
      const [what, tls, file] of [
        ["garbage certificate", { cert: garbage, key: good.key }, garbage],
        ["key of another certificate", { cert: good.cert, key: other.key }, other.key],
        ["certificate given as key", { cert: good.cert, key: good.cert }, good.cert],
      ] as const
    ) {
      await t.step(`${what}: check-config and serve exit 2 naming "${file}"`, async () => {
        const config = await configFor(tls);
        const check = await runMain(["check-config", "--config", config]);
        assertEquals(check.code, 2, check.stdout + check.stderr);
        assert(check.stderr.includes(`"${file}"`), check.stderr);
        const serve = await runMain(["serve", "--config", config]);
        assertEquals(serve.code, 2, serve.stderr);
        match(serve.stderr, /event=startup_failed/);
        assert(serve.stderr.includes(file), serve.stderr);
        assert(!/event=listening/.test(serve.stderr), "nothing was bound");
      });
    }
    await t.step("expiring within 14 days: a warning, exit 0", async () => {
      const r = await runMain(["check-config", "--config", await configFor(soon)]);
      assertEquals(r.code, 0, r.stderr);
      match(r.stderr, /^warning: TLS certificate ".*soon\.pem" expires in 4 days/m);
    });
    await t.step("not naming hostname: a warning, exit 0", async () => {
      const r = await runMain([
        "check-config",
        "--config",
        await configFor(good, "relay.example.net"),
      ]);
      assertEquals(r.code, 0, r.stderr);
      match(r.stderr, /^warning: .* does not name hostname "relay\.example\.net"/m);
    });
  } finally {
    for (const f of files) await Deno.remove(f, { recursive: true }).catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
