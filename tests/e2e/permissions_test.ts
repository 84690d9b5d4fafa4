/**
 * E2E (#11): the documented permissions work. `serve` and `fetch` run with exactly the Deno
 * flags of the `compile` task (deno.json) and of the README's run instructions (its
 * `main.ts serve` and `main.ts fetch` command blocks, paths mapped into a temp dir), read at
 * test time rather than copied: STARTTLS with `fetch.ca`, delivery into a Maildir and over
 * LMTP on a unix socket. Also `fetch.tls_server_name`, and the error for a name mismatch.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import YAML from "yaml";
import { writeFetchConfig } from "../_helpers/fetch_process.ts";
import { addUser, runMain, startServer } from "../_helpers/server_process.ts";
import { compileFlags, mapPaths, README_PATHS, readmeFlags } from "../_helpers/documented_flags.ts";
import { makeTestCa } from "../_helpers/certs.ts";
import { submitAccepted } from "../_helpers/smtp_submit.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { toolTest } from "../_helpers/tools.ts";
import { makeSelfSigned } from "../_helpers/self_signed.ts";

function runFetch(
  flags: readonly string[],
  configPath: string,
): Promise<{ code: number; stderr: string }> {
  return runMain(["fetch", "--once", "--config", configPath], { denoFlags: flags });
}

await toolTest("serve and fetch work with exactly the documented permissions (#11)", [
  "openssl",
], async (t) => {
  assert(!(await compileFlags()).some((f) => f === "--allow-all"), "no blanket permission");
  const ca = await makeTestCa();
  assert(ca !== undefined);
  for (const source of ["compile task", "README"] as const) {
    const tmp = await Deno.makeTempDir({ prefix: "odmr-perm-" });
    const etc = `${tmp}/etc`;
    const data = `${tmp}/data`;
    await Deno.mkdir(etc);
    await Deno.mkdir(data, { mode: 0o700 });
    for (const f of ["certPath", "keyPath", "caCertPath"] as const) {
      await Deno.copyFile(ca[f], `${etc}/${f}.pem`);
    }
    await Deno.writeTextFile(`${etc}/password`, "secret-password\n", { mode: 0o600 });
    const map = { [README_PATHS.config]: etc, [README_PATHS.data]: data };
    const serveFlags = source === "README"
      ? mapPaths(await readmeFlags("serve"), map)
      : await compileFlags();
    const server = await startServer({
      configPath: `${etc}/config.yaml`,
      dataDir: data,
      denoFlags: serveFlags,
      config: YAML.stringify({
        hostname: "mx.test",
        "data_dir": data,
        tls: { cert: `${etc}/certPath.pem`, key: `${etc}/keyPath.pem` },
        smtp: { listen: ["127.0.0.1:0"] },
        odmr: { listen: ["127.0.0.1:0"] },
      }),
    });
    const lmtp = await startCaptureServer({ protocol: "lmtp", unixPath: `${tmp}/lmtp.sock` });
    try {
      await addUser(server.configPath, "alice", ["example.org"]);
      for (
        const [target, deliverTo, mailboxPath] of [
          ["Maildir", `maildir:${tmp}/Maildir`, `${tmp}/Maildir`],
          ["LMTP unix socket", `lmtp+unix:${tmp}/lmtp.sock`, `${tmp}/lmtp.sock`],
        ] as const
      ) {
        await t.step(`${source}: STARTTLS with fetch.ca into a ${target}`, async () => {
          await submitAccepted({
            port: server.smtp[0]!.port,
            from: "s@remote.test",
            to: ["alice@example.org"],
            body: new TextEncoder().encode(`Subject: ${target}\r\n\r\nhello\r\n`),
          });
          const fetchConfig = `${etc}/fetch.yaml`;
          await Deno.writeTextFile(
            fetchConfig,
            YAML.stringify({
              hostname: "pi.test",
              fetch: {
                server: `127.0.0.1:${server.odmr[0]!.port}`,
                tls: "starttls",
                ca: `${etc}/caCertPath.pem`,
                user: "alice",
                "password_file": `${etc}/password`,
                "deliver_to": deliverTo,
              },
            }),
          );
          const flags = source === "README"
            ? mapPaths(await readmeFlags("fetch"), {
              ...map,
              [README_PATHS.mailbox]: mailboxPath,
            })
            : await compileFlags();
          const r = await runFetch(flags, fetchConfig);
          assertEquals(r.code, 0, `fetch ${flags.join(" ")}:\n${r.stderr}`);
          if (target === "Maildir") {
            const names: string[] = [];
            for await (const e of Deno.readDir(`${tmp}/Maildir/new`)) names.push(e.name);
            assertEquals(names.length, 1, r.stderr);
          } else {
            await lmtp.waitForMessages(1, 5_000);
            assertEquals(lmtp.messages[0]?.recipients, ["alice@example.org"]);
          }
        });
      }
    } finally {
      await lmtp.close();
      assertEquals(await server.stop(), 0, server.logs());
      await Deno.remove(tmp, { recursive: true });
    }
  }
  await ca.cleanup();
});

await toolTest("fetch.tls_server_name is the name verified, and a mismatch says so (#11)", [
  "openssl",
], async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "odmr-tsn-" });
  // Names mx.test only (not 127.0.0.1); fetch.ca pins this very certificate.
  const cert = await makeSelfSigned(tmp, "mx", { dnsName: "mx.test", days: 30, withoutIp: true });
  const server = await startServer({ config: { tls: cert } });
  try {
    await addUser(server.configPath, "alice", ["example.org"]);
    await Deno.writeTextFile(`${tmp}/password`, "secret-password\n", { mode: 0o600 });
    const fetchWith = async (name: string | undefined) => {
      const path = await writeFetchConfig(tmp, {
        server: `127.0.0.1:${server.odmr[0]!.port}`,
        tls: "starttls",
        ca: cert.cert,
        ...(name === undefined ? {} : { "tls_server_name": name }),
        "deliver_to": `maildir:${tmp}/Maildir`,
      });
      return await runFetch(["-A"], path);
    };
    await t.step(
      "without it, the address is checked and the error names the mismatch",
      async () => {
        const r = await fetchWith(undefined);
        assertEquals(r.code, 5, r.stderr);
        match(r.stderr, /does not name "127\.0\.0\.1".*fetch\.tls_server_name/);
        assert(!/give its CA/.test(r.stderr), r.stderr);
      },
    );
    await t.step("a wrong name is refused, saying so", async () => {
      const r = await fetchWith("wrong.test");
      assertEquals(r.code, 5, r.stderr);
      match(r.stderr, /does not name "wrong\.test"/);
    });
    await t.step("the certificate's name verifies", async () => {
      const r = await fetchWith("mx.test");
      assertEquals(r.code, 0, r.stderr);
    });
  } finally {
    assertEquals(await server.stop(), 0, server.logs());
    await Deno.remove(tmp, { recursive: true });
    await removeDir(server.dataDir);
  }
});

async function removeDir(path: string): Promise<void> {
  await Deno.remove(path, { recursive: true }).catch(() => {});
  await Deno.remove(`${path}.config.yaml`).catch(() => {});
}
