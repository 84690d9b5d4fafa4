/**
 * `fetch.ca` is an extra trust root (CONTRACT: "optional extra trust root; default: system
 * roots"): the provider's certificate verifies against the system roots or the CA in the file.
 * fetch used it as the only root, so a provider with a publicly trusted certificate failed
 * (exit 5) once a private CA was added. Pinning, trusting the file alone, is explicit:
 * `fetch.ca_only: true`. Checked on the trust roots a poll hands to TLS (the system roots
 * cannot be made to sign a test certificate), and with real certificates both ways.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import tls from "node:tls";
import { startPoll } from "../../src/odmr/customer_start.ts";
import { parseConfig } from "../../src/config/parse.ts";
import type { FetchConfig } from "../../src/config/types.ts";
import { makeTestCa } from "../_helpers/certs.ts";
import { toolTest } from "../_helpers/tools.ts";
import { writeFetchConfig } from "../_helpers/fetch_process.ts";
import { addUser, runMain, startServer } from "../_helpers/server_process.ts";

function fetchConfig(dir: string, extra: string): FetchConfig {
  const text = `fetch:\n  server: "127.0.0.1:1"\n  user: alice\n  password_file: pw\n` +
    `  ca: ca.pem\n${extra}`;
  const config = parseConfig(text, {
    source: `${dir}/c.yaml`,
    baseDir: dir,
    systemHostname: () => "pi.home",
  });
  assert(config.fetch);
  return config.fetch;
}

/** The trust roots the poll's TLS would get, as a list of PEM texts. */
async function rootsOf(config: FetchConfig): Promise<string[]> {
  const start = await startPoll(config, 2_000);
  assert(start.ok, start.ok ? "" : start.message);
  const pem: unknown = start.files.caPem;
  return typeof pem === "string" ? [pem] : [...(pem as string[])];
}

await toolTest("fetch.ca adds to the system roots; fetch.ca_only: true trusts it alone", [
  "openssl",
], async (t) => {
  const ca = await makeTestCa();
  assert(ca);
  const dir = ca.dir;
  try {
    await Deno.writeTextFile(`${dir}/pw`, "secret\n", { mode: 0o600 });
    await t.step("default: every system root, then fetch.ca", async () => {
      const roots = await rootsOf(fetchConfig(dir, ""));
      assertEquals(roots, [...tls.rootCertificates, ca.caCertPem]);
    });
    await t.step("fetch.ca_only: true: fetch.ca alone (pinning)", async () => {
      const roots = await rootsOf(fetchConfig(dir, "  ca_only: true\n"));
      assertEquals(roots, [ca.caCertPem]);
    });
  } finally {
    await ca.cleanup();
  }
});

await toolTest("fetch --once over STARTTLS with real certificates: fetch.ca and fetch.ca_only", [
  "openssl",
], async (t) => {
  const ca = await makeTestCa();
  const other = await makeTestCa();
  assert(ca && other);
  const tmp = await Deno.makeTempDir({ prefix: "odmr-ca-extra-" });
  const server = await startServer({ config: { tls: { cert: ca.certPath, key: ca.keyPath } } });
  try {
    await addUser(server.configPath, "alice", ["example.org"]);
    await Deno.writeTextFile(`${tmp}/password`, "secret-password\n", { mode: 0o600 });
    const fetchWith = async (
      caFile: string | undefined,
      caOnly: boolean,
      env: Record<string, string> = {},
    ) => {
      const path = await writeFetchConfig(tmp, {
        server: `localhost:${server.odmr[0]!.port}`,
        tls: "starttls",
        ...(caFile === undefined ? {} : { ca: caFile }),
        ...(caOnly ? { "ca_only": true } : {}),
        "deliver_to": `maildir:${tmp}/Maildir`,
      });
      return await runMain(["fetch", "--once", "--config", path], { env });
    };
    for (const caOnly of [false, true]) {
      await t.step(`ca_only ${caOnly}: the provider's CA in fetch.ca verifies`, async () => {
        const r = await fetchWith(ca.caCertPath, caOnly);
        assertEquals(r.code, 0, r.stderr);
      });
      await t.step(`ca_only ${caOnly}: a CA that did not sign it does not`, async () => {
        const r = await fetchWith(other.caCertPath, caOnly);
        assertEquals(r.code, 5, r.stderr);
        match(r.stderr, /not trusted/);
        match(r.stderr, caOnly ? /fetch\.ca_only/ : /system roots/);
      });
    }
    // Deno's own trust store settings (README "The customer: fetch"): the provider's CA given
    // through DENO_CERT, or as the operating system's store (DENO_TLS_CA_STORE=system; the
    // store read from SSL_CERT_FILE here), verifies a fetch without fetch.ca, and is not
    // consulted once fetch.ca is set: the roots fetch.ca is added to are Deno's Mozilla list.
    const denoStores: [string, Record<string, string>][] = [
      ["DENO_CERT", { DENO_CERT: ca.caCertPath }],
      ["DENO_TLS_CA_STORE=system", { DENO_TLS_CA_STORE: "system", SSL_CERT_FILE: ca.caCertPath }],
    ];
    for (const [name, env] of denoStores) {
      await t.step(`${name} with the provider's CA verifies without fetch.ca`, async () => {
        const r = await fetchWith(undefined, false, env);
        assertEquals(r.code, 0, r.stderr);
      });
      await t.step(`${name} is not consulted beside fetch.ca`, async () => {
        const r = await fetchWith(other.caCertPath, false, env);
        assertEquals(r.code, 5, r.stderr);
        match(r.stderr, /not trusted/);
      });
    }
  } finally {
    assertEquals(await server.stop(), 0, server.logs());
    await Deno.remove(tmp, { recursive: true });
    await Deno.remove(server.dataDir, { recursive: true }).catch(() => {});
    await ca.cleanup();
    await other.cleanup();
  }
});

await toolTest("fetch.ca without --allow-sys: exit 2 saying to grant it or set fetch.ca_only", [
  "openssl",
], async () => {
  const ca = await makeTestCa();
  assert(ca);
  const tmp = await Deno.makeTempDir({ prefix: "odmr-ca-nosys-" });
  // Nobody listens here: a poll that got past its files would fail with exit 5 instead.
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (closed.addr as Deno.NetAddr).port;
  closed.close();
  try {
    const run = async (caOnly: boolean) => {
      const path = await writeFetchConfig(tmp, {
        server: `127.0.0.1:${port}`,
        tls: "starttls",
        ca: ca.caCertPath,
        ...(caOnly ? { "ca_only": true } : {}),
        "deliver_to": `maildir:${tmp}/Maildir`,
      });
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "--allow-net",
          `--allow-read=${tmp},${ca.dir}`,
          `--allow-write=${tmp}`,
          "--allow-env=ODMR_RELAY_CONFIG,JOURNAL_STREAM",
          "--allow-sys=hostname",
          new URL("../../main.ts", import.meta.url).pathname,
          "fetch",
          "--once",
          "--config",
          path,
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
        env: { NO_COLOR: "1" },
      }).output();
      return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
    };
    const extra = await run(false);
    assertEquals(extra.code, 2, extra.stderr);
    match(extra.stderr, /fetch\.ca .*--allow-sys.*fetch\.ca_only: true/);
    // Pinning needs no system roots, so no --allow-sys: the poll gets as far as connecting.
    const pinned = await run(true);
    assertEquals(pinned.code, 5, pinned.stderr);
  } finally {
    await Deno.remove(tmp, { recursive: true });
    await ca.cleanup();
  }
});

Deno.test("fetch.ca_only: true without fetch.ca is refused naming the key; it must be a boolean", () => {
  const errorOf = (extra: string) => {
    try {
      parseConfig(
        `fetch:\n  server: relay.example.net\n  user: alice\n  password_file: pw\n${extra}`,
        { source: "/etc/odmr.yaml", baseDir: "/etc", systemHostname: () => "pi.home" },
      );
    } catch (err) {
      return String((err as Error).message);
    }
    return "";
  };
  match(errorOf("  ca_only: true\n"), /fetch\.ca_only is true, which needs fetch\.ca/);
  match(errorOf("  ca: ca.pem\n  ca_only: yes\n"), /fetch\.ca_only must be true or false/);
  assertEquals(errorOf("  ca_only: false\n"), "");
});
