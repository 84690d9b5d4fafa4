/**
 * (#16) The customer side of AUTH EXTERNAL, two real processes and real TLS: `fetch` with
 * `fetch.client_cert`/`client_key` and no password file collects the mail when the provider
 * pinned the certificate (STARTTLS and implicit TLS); an unpinned certificate without a
 * password ends with exit 3; a key file others may read is refused (exit 2, naming it).
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import YAML from "yaml";
import { addUser, runMain, startTlsServer } from "../_helpers/server_process.ts";
import { makeSelfSigned } from "../_helpers/self_signed.ts";
import { submit } from "../_helpers/smtp_submit.ts";
import { toolTest } from "../_helpers/tools.ts";

async function countFiles(dir: string): Promise<number> {
  let n = 0;
  try {
    for await (const e of Deno.readDir(dir)) if (e.isFile) n++;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return n;
}

await toolTest("(#16) fetch logs in with a pinned client certificate, no password file", [
  "openssl",
], async (t) => {
  const { ca, server, cleanup } = await startTlsServer({
    odmr: { listen: ["127.0.0.1:0", { address: "127.0.0.1:0", tls: "implicit" }] },
  });
  const dir = ca.dir;
  try {
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    const pi = await makeSelfSigned(dir, "pi", { dnsName: "pi.test", days: 2 });
    const stranger = await makeSelfSigned(dir, "stranger", { dnsName: "s.test", days: 2 });
    await Deno.chmod(pi.key, 0o600);
    await Deno.chmod(stranger.key, 0o600);
    const pin = await runMain([
      "user",
      "certs",
      "alice",
      "--add",
      pi.cert,
      "--config",
      server.configPath,
    ]);
    assertEquals(pin.code, 0, pin.stderr);
    const [plain, implicit] = server.odmr;
    assert(plain !== undefined && implicit !== undefined);

    const maildir = `${dir}/Maildir`;
    const fetch = async (port: number, tls: string, client: { cert: string; key: string }) => {
      const path = `${dir}/fetch.yaml`;
      await Deno.writeTextFile(
        path,
        YAML.stringify({
          hostname: "pi.test",
          "data_dir": `${dir}/data`,
          fetch: {
            server: `127.0.0.1:${port}`,
            tls,
            ca: ca.caCertPath,
            user: "alice",
            "client_cert": client.cert,
            "client_key": client.key,
            domains: ["example.org"],
            "deliver_to": `maildir:${maildir}`,
          },
        }),
      );
      return await runMain(["fetch", "--once", "--config", path]);
    };
    const queueOne = async (to: string) => {
      const body = new TextEncoder().encode(`Subject: for ${to}\r\n\r\nhello\r\n`);
      const r = await submit({ port: server.smtp[0]!.port, from: "s@remote.test", to: [to], body });
      assert(r.final?.startsWith("250"), r.replies.join(" | "));
    };

    for (const [tls, port] of [["starttls", plain.port], ["implicit", implicit.port]] as const) {
      await t.step(`pinned certificate over ${tls}: mail collected, exit 0`, async () => {
        const before = await countFiles(`${maildir}/new`);
        await queueOne(`pi-${tls}@example.org`);
        const r = await fetch(port, tls, pi);
        assertEquals(r.code, 0, r.stderr);
        match(r.stderr, /mechanism=EXTERNAL/);
        assertEquals(await countFiles(`${maildir}/new`), before + 1);
      });
    }
    await t.step("an unpinned certificate and no password: exit 3, mail stays", async () => {
      await queueOne("left@example.org");
      const before = await countFiles(`${maildir}/new`);
      const r = await fetch(implicit.port, "implicit", stranger);
      assertEquals(r.code, 3, r.stderr);
      match(r.stderr, /AUTH EXTERNAL as "alice" failed: 535 5\.7\.8/);
      assertEquals(await countFiles(`${maildir}/new`), before);
    });
    await t.step("a client key others may read: exit 2, naming the key file", async () => {
      await Deno.chmod(pi.key, 0o644);
      const r = await fetch(implicit.port, "implicit", pi);
      assertEquals(r.code, 2, r.stderr);
      assert(
        r.stderr.includes(`Refusing client key file (fetch.client_key) "${pi.key}"`),
        r.stderr,
      );
      match(r.stderr, /chmod 600/);
    });
  } finally {
    await cleanup();
  }
});
