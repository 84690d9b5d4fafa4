/**
 * (review wt18-revin) AUTH PLAIN and LOGIN check the password with scrypt (16 MiB each,
 * src/auth/password_hash.ts). Many connections that send their AUTH at once must not run as many
 * scrypts at once: each took its 16 MiB, so 32 TLS connections (anyone, before AUTH, within the
 * default connection limits) grew serve by ~500 MB. Real `serve`, ODMR implicit-TLS port; right
 * passwords, so that the throttle delays no reply.
 */
import { match as assertMatch, ok as assert } from "node:assert/strict";
import { withTestCa } from "../_helpers/certs.ts";
import { toolTest } from "../_helpers/tools.ts";
import { withServe } from "./_serve.ts";
import { TlsClient } from "./_tls_client.ts";

const CONNECTIONS = 32;
const PASSWORD = "right-password";
/** serve's peak RSS growth allowed for the burst (SECURITY.md): a few scrypts at a time. */
const MAX_PEAK_GROWTH_KIB = 128 * 1024;

/** serve's peak resident memory so far (VmHWM), KiB. */
async function peakKib(pid: number): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const m = /^VmHWM:\s+(\d+)/m.exec(status);
  assert(m !== null, "VmHWM in /proc/PID/status");
  return Number(m[1]);
}

await toolTest(
  `${CONNECTIONS} AUTH PLAIN at once: serve's peak memory grows < 128 MiB (scrypts wait their turn)`,
  ["openssl"],
  async () => {
    await withTestCa(async (ca) => {
      await withServe({
        tls: { cert: ca.certPath, key: ca.keyPath },
        smtp: { max_connections: 200, max_connections_per_ip: 200 },
        odmr: { listen: [{ address: "127.0.0.1:0", tls: "implicit" }] },
      }, async (server) => {
        const port = server.odmr[0]!.port;
        const clients: TlsClient[] = [];
        try {
          for (let i = 0; i < CONNECTIONS; i++) {
            const c = await TlsClient.open(port, ca);
            clients.push(c);
            assertMatch(await c.reply(), /^220 /);
            assertMatch(await c.command("EHLO customer.test"), /^250 /);
          }
          const before = await peakKib(server.pid);
          const plain = btoa(`\0alice\0${PASSWORD}`);
          const replies = await Promise.all(clients.map((c) => c.command(`AUTH PLAIN ${plain}`)));
          for (const r of replies) assertMatch(r, /^235 /);
          const growth = await peakKib(server.pid) - before;
          assert(growth < MAX_PEAK_GROWTH_KIB, `serve's peak memory grew by ${growth} KiB`);
        } finally {
          for (const c of clients) c.close();
        }
      }, { users: [{ name: "alice", domains: ["example.org"], password: PASSWORD }] });
    });
  },
);
