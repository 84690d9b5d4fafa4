/**
 * `fetch.ca` and `fetch.client_cert` must hold a PEM certificate. A file without one (the key,
 * the password file, an empty file) was read as the only trust root and the poll failed in the
 * TLS handshake: "not signed by the CA in fetch.ca", exit 5, a temporary failure that cron
 * retries for ever. It is a config error: exit 2 naming the key and the file, before any
 * connection.
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { runCustomer } from "../../src/odmr/customer.ts";
import type { FetchConfig } from "../../src/config/types.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { aliceFetchConfig } from "../_helpers/customer_config.ts";

const FAST = { connectMs: 5_000, commandMs: 5_000, atrnMs: 5_000, receiverMs: 5_000 };

Deno.test("fetch.ca or fetch.client_cert without a PEM certificate: exit 2 naming it, no connection", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-pem-files-" });
  // Closes every connection, counting it: a poll that got this far would fail with exit 5.
  const idle = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let connections = 0;
  const accepting = (async () => {
    for await (const conn of idle) {
      connections++;
      conn.close();
    }
  })();
  try {
    await Deno.writeTextFile(`${dir}/password`, "pw\n", { mode: 0o600 });
    await Deno.writeTextFile(
      `${dir}/key.pem`,
      "-----BEGIN PRIVATE KEY-----\nAA==\n-----END PRIVATE KEY-----\n",
      {
        mode: 0o600,
      },
    );
    await Deno.writeTextFile(`${dir}/empty.pem`, "");
    const base = aliceFetchConfig(dir, (idle.addr as Deno.NetAddr).port, { tls: "starttls" });
    const cases: { key: string; file: string; config: FetchConfig & { hostname: string } }[] = [
      { key: "fetch.ca", file: "password", config: { ...base, ca: `${dir}/password` } },
      { key: "fetch.ca", file: "key.pem", config: { ...base, ca: `${dir}/key.pem` } },
      { key: "fetch.ca", file: "empty.pem", config: { ...base, ca: `${dir}/empty.pem` } },
      {
        key: "fetch.client_cert",
        file: "key.pem",
        config: { ...base, clientCert: `${dir}/key.pem`, clientKey: `${dir}/key.pem` },
      },
    ];
    for (const c of cases) {
      await t.step(`${c.key}: ${c.file}`, async () => {
        const outcome = await runCustomer(c.config, { log: NULL_LOGGER, timeouts: FAST });
        assertEquals([outcome.exitCode, outcome.result], [2, "config"], outcome.message);
        match(outcome.message, new RegExp(`${c.key.replace(".", "\\.")} ".*/${c.file}"`));
        match(outcome.message, /no PEM certificate/);
      });
    }
    assertEquals(connections, 0);
  } finally {
    idle.close();
    await accepting.catch(() => {});
    await Deno.remove(dir, { recursive: true });
  }
});
