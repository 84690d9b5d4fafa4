/**
 * Every file the config names (tls.cert/key, fetch.ca, fetch.password_file, fetch.client_cert/key,
 * queue.postgres.password_file), and every DKIM key file, is read only up to 1 MiB, as the config
 * file itself: a bigger one is refused with a line naming the key (or the file) and the limit,
 * before it is read. `check-config` and `serve` exit 2 (CONTRACT "Exit codes"); a file that grows
 * later is refused where it is read again (a TLS reload, each `fetch` poll, each DKIM signature).
 * Before, the whole file was read into memory whatever its size. The big files are sparse.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { runMain } from "../_helpers/server_process.ts";
import { CertificateError, loadCertificatePair } from "../../src/net/tls_context.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { startPoll } from "../../src/odmr/customer_start.ts";
import { dkimCommand } from "../../src/cli/dkim.ts";
import { recordingIo } from "../cli/_io.ts";

const MIB = 1024 * 1024;

/** A sparse file of `size` octets (zeros) at `path`, mode 0600. */
async function sparse(path: string, size: number): Promise<string> {
  using f = await Deno.open(path, { write: true, create: true, mode: 0o600 });
  await f.truncate(size);
  return path;
}

/** The YAML of a config naming the small files in `dir`, except `big` for `key`. */
function configText(dir: string, key: string, big: string): string {
  const file = (k: string, name: string) => k === key ? big : `${dir}/${name}`;
  return [
    `data_dir: ${dir}/data`,
    `tls: {cert: ${file("tls.cert", "cert.pem")}, key: ${file("tls.key", "key.pem")}}`,
    `queue: {postgres: {url: "postgres://u@127.0.0.1:1/db", password_file: ${
      file("queue.postgres.password_file", "pg-password")
    }}}`,
    `fetch: {server: "127.0.0.1:1", user: alice, tls: none, password_file: ${
      file("fetch.password_file", "password")
    }, client_cert: ${file("fetch.client_cert", "client.pem")}, client_key: ${
      file("fetch.client_key", "client.key")
    }, ca: ${file("fetch.ca", "ca.pem")}}`,
    "",
  ].join("\n");
}

const KEYS = [
  "tls.cert",
  "tls.key",
  "queue.postgres.password_file",
  "fetch.password_file",
  "fetch.client_cert",
  "fetch.client_key",
  "fetch.ca",
];

Deno.test("a file the config names over 1 MiB: check-config and serve exit 2 naming the key and the limit", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-ref-size-" });
  try {
    for (const name of ["cert.pem", "key.pem", "pg-password", "password", "client.pem"]) {
      await Deno.writeTextFile(`${dir}/${name}`, "x\n", { mode: 0o600 });
    }
    await Deno.writeTextFile(`${dir}/client.key`, "x\n", { mode: 0o600 });
    await Deno.writeTextFile(`${dir}/ca.pem`, "x\n", { mode: 0o600 });
    const big = await sparse(`${dir}/big`, MIB + 1);
    for (const key of KEYS) {
      await t.step(key, async () => {
        const config = `${dir}/${key}.yaml`;
        await Deno.writeTextFile(config, configText(dir, key, big));
        const r = await runMain(["check-config", "--config", config], {
          signal: AbortSignal.timeout(30_000),
        });
        assertEquals(r.code, 2, r.stderr);
        assertEquals(
          r.stderr,
          `error: Cannot load config "${config}": ${key} names a file larger than 1 MiB: "${big}"\n`,
        );
      });
    }
    await t.step("serve", async () => {
      const config = `${dir}/serve.yaml`;
      await Deno.writeTextFile(config, configText(dir, "tls.cert", big));
      const r = await runMain(["serve", "--config", config], {
        signal: AbortSignal.timeout(30_000),
      });
      assertEquals(r.code, 2, r.stderr);
      match(r.stderr, /tls\.cert names a file larger than 1 MiB/);
    });
    await t.step("exactly 1 MiB is still read (and then judged on its content)", async () => {
      const config = `${dir}/limit.yaml`;
      await Deno.writeTextFile(
        config,
        configText(dir, "fetch.ca", await sparse(`${dir}/mib`, MIB)),
      );
      const r = await runMain(["check-config", "--config", config], {
        signal: AbortSignal.timeout(30_000),
      });
      assert(!r.stderr.includes("1 MiB"), r.stderr);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a named file that grew past 1 MiB after the start is refused where it is read again", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-ref-grown-" });
  try {
    const big = await sparse(`${dir}/big`, MIB + 1);
    const small = `${dir}/small`;
    await Deno.writeTextFile(small, "x\n", { mode: 0o600 });
    await t.step("tls.cert at a reload", () => {
      let error: unknown;
      try {
        loadCertificatePair(big, small);
      } catch (err) {
        error = err;
      }
      assert(error instanceof CertificateError, String(error));
      match(error.message, /tls\.cert .*larger than 1 MiB/);
    });
    const fetchConfig = (k: string) => {
      const file = (key: string) => key === k ? big : small;
      return parseConfig(
        `fetch: {server: "127.0.0.1:1", user: a, tls: none, password_file: ${
          file("fetch.password_file")
        }, ca: ${file("fetch.ca")}}\n`,
        { source: `${dir}/c.yaml`, baseDir: dir, systemHostname: () => "h.test" },
      ).fetch!;
    };
    for (const key of ["fetch.password_file", "fetch.ca"]) {
      await t.step(`${key} at a poll`, async () => {
        const start = await startPoll(fetchConfig(key), 1_000);
        assertEquals(start.ok, false);
        if (!start.ok) match(start.message, new RegExp(`${key}.*larger than 1 MiB`));
      });
    }
    await t.step("a DKIM key file", async () => {
      const keys = `${dir}/data/dkim/example.org`;
      await Deno.mkdir(keys, { recursive: true, mode: 0o700 });
      await sparse(`${keys}/big.pem`, MIB + 1);
      const io = recordingIo(`${dir}/data`);
      assertEquals(await dkimCommand(["list"], io), 1);
      match(io.err, /example\.org\/big\.pem.* larger than 1 MiB/);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
