/**
 * A `tls.cert` or `tls.key` that cannot be used is refused by check-config and serve with exit
 * 2 and a message naming the config file and the key path (CONTRACT: "the file and key path"),
 * not only the PEM file: with two certificates around, the operator must know which key of
 * which config to fix. The real process.
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { runMain } from "../_helpers/server_process.ts";
import { toolTest } from "../_helpers/tools.ts";
import { makeSelfSigned } from "../_helpers/self_signed.ts";

await toolTest("check-config and serve name tls.cert or tls.key and the config file (exit 2)", [
  "openssl",
], async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-tlskey-" });
  try {
    const a = await makeSelfSigned(dir, "a", { dnsName: "mx.test", days: 90 });
    const b = await makeSelfSigned(dir, "b", { dnsName: "mx.test", days: 90, rsa: true });
    await Deno.writeTextFile(`${dir}/garbage.pem`, "this is not PEM\n");
    const cases = [
      { key: "tls.cert", cert: `${dir}/garbage.pem`, keyFile: a.key, bad: `${dir}/garbage.pem` },
      { key: "tls.key", cert: a.cert, keyFile: b.key, bad: b.key },
    ];
    for (const c of cases) {
      const config = `${dir}/${c.key}.yaml`;
      await Deno.writeTextFile(
        config,
        `hostname: mx.test\ndata_dir: ./data\nsmtp:\n  listen: ["127.0.0.1:0"]\n` +
          `odmr:\n  listen: ["127.0.0.1:0"]\ntls:\n  cert: ${c.cert}\n  key: ${c.keyFile}\n`,
      );
      await t.step(`check-config, bad ${c.key}`, async () => {
        const r = await runMain(["check-config", "--config", config]);
        assertEquals(r.code, 2, r.stderr);
        match(r.stderr, new RegExp(`^error: Cannot load config "${config}": ${c.key} "${c.bad}"`));
      });
      await t.step(`serve, bad ${c.key}`, async () => {
        const r = await runMain(["serve", "--config", config], {
          signal: AbortSignal.timeout(60_000),
        });
        assertEquals(r.code, 2, r.stderr);
        match(r.stderr, /event=startup_failed /);
        match(r.stderr, new RegExp(` config=${config} key=${c.key} file=${c.bad} `));
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
