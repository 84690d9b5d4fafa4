/**
 * What every node of one PostgreSQL database must agree on (#14), seen from outside through two
 * real `serve` processes with data directories of their own: the SCRAM salt of a user name that
 * does not exist (else asking two MX hosts tells which names exist), and the client
 * certificates pinned for AUTH EXTERNAL (`user certs` run against one node's config is obeyed
 * by the other).
 */
import assert from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { testCaOrSkip } from "../_helpers/certs.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { withTwoNodes } from "../_helpers/postgres_nodes.ts";
import { addUser, runMain, startServer } from "../_helpers/server_process.ts";
import { RawClient } from "../security/_raw.ts";
import { sClient } from "../_helpers/s_client.ts";

const PASSWORD = "secret-password";

/** The salt a node shows for `user` in SCRAM-SHA-256's server-first message. */
async function scramSalt(port: number, user: string): Promise<string> {
  const c = await RawClient.connect(port);
  try {
    assert.match(await c.reply(), /^220 /);
    assert.match(await c.command("EHLO customer.test"), /^250 /);
    const first = btoa(`n,,n=${user},r=abcdefghijklmnop`);
    const r = await c.command(`AUTH SCRAM-SHA-256 ${first}`);
    assert.match(r, /^334 /);
    const m = /,s=([^,]+),/.exec(atob(r.slice(4).trim()));
    assert.ok(m?.[1] !== undefined, r);
    return m[1];
  } finally {
    c.close();
  }
}

await postgresTest(
  "two nodes give an unknown user name the same SCRAM salt, from the key in the database (#14)",
  async (pg) => {
    await withTwoNodes(pg, "shared_salt", {}, async (a, b) => {
      await addUser(a.configPath, "alice", ["example.org"], PASSWORD);
      const portA = a.odmr[0]?.port ?? 0;
      const portB = b.odmr[0]?.port ?? 0;
      const ghostA = await scramSalt(portA, "ghost");
      const ghostB = await scramSalt(portB, "ghost");
      assert.equal(ghostB, ghostA, "node B must not show another fake salt than node A");
      assert.equal(await scramSalt(portB, "nobody"), await scramSalt(portA, "nobody"));
      assert.notEqual(await scramSalt(portA, "nobody"), ghostA, "one salt per name");
      // A real user's salt is the stored one, the same everywhere, and unlike a fake one.
      for (let i = 0; i < 50 && (await scramSalt(portB, "alice")) === ghostA; i++) {
        await new Promise((res) => setTimeout(res, 100));
      }
      assert.equal(await scramSalt(portB, "alice"), await scramSalt(portA, "alice"));
      // Restarting a node keeps the key (it is not made again).
      assert.equal(await b.stop(), 0, b.logs());
      const again = await startServer({
        dataDir: b.dataDir,
        configPath: b.configPath,
        config: await Deno.readTextFile(b.configPath),
      });
      try {
        assert.equal(await scramSalt(again.odmr[0]?.port ?? 0, "ghost"), ghostA);
      } finally {
        await again.stop();
      }
    });
  },
);

await postgresTest(
  "a certificate pinned with `user certs` through node A logs in on node B; unpinned through B, refused on A (#14)",
  async (pg) => {
    const ca = await testCaOrSkip("pinned certificates across nodes");
    if (ca === undefined) return;
    try {
      const cert = { cert: `${ca.dir}/pi.pem`, key: `${ca.dir}/pi.key` };
      const made = await new Deno.Command("openssl", {
        args: ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", cert.key]
          .concat(["-out", cert.cert, "-subj", "/CN=pi", "-days", "2"]),
        stdout: "null",
        stderr: "null",
      }).output();
      assert.ok(made.success, "openssl made the client certificate");
      const fingerprint = new X509Certificate(await Deno.readTextFile(cert.cert)).fingerprint256;
      const tls = {
        tls: { cert: ca.certPath, key: ca.keyPath },
        odmr: { listen: [{ address: "127.0.0.1:0", tls: "implicit" }] },
      };
      await withTwoNodes(pg, "shared_pins", tls, async (a, b) => {
        await addUser(a.configPath, "alice", ["example.org"], PASSWORD);
        const pinned = await runMain([
          "user",
          "certs",
          "alice",
          "--add",
          cert.cert,
          "--config",
          a.configPath,
        ]);
        assert.equal(pinned.code, 0, pinned.stderr);
        const listed = await runMain(["user", "certs", "alice", "--config", b.configPath]);
        assert.equal(listed.stdout, `${fingerprint}\n`, "node B's config sees the pin");
        const login = ["EHLO pi.test", "AUTH EXTERNAL =", "QUIT"];
        const portA = a.odmr[0]?.port ?? 0;
        const portB = b.odmr[0]?.port ?? 0;
        let onB = "";
        for (let i = 0; i < 10 && !/^235 /m.test(onB); i++) {
          if (i > 0) await new Promise((res) => setTimeout(res, 200));
          onB = await sClient(portB, login, { cert });
        }
        assert.match(onB, /^235 /m, "node B accepts the certificate pinned through node A");
        const removed = await runMain([
          "user",
          "certs",
          "alice",
          "--remove",
          fingerprint,
          "--config",
          b.configPath,
        ]);
        assert.equal(removed.code, 0, removed.stderr);
        let onA = "";
        for (let i = 0; i < 10 && !/^535 /m.test(onA); i++) {
          if (i > 0) await new Promise((res) => setTimeout(res, 200));
          onA = await sClient(portA, login, { cert });
        }
        assert.match(onA, /^535 5\.7\.8 /m, "node A refuses the certificate unpinned through B");
        // Nothing of it went to a data_dir file: the pins live with the users in the database.
        const local = await runMain(["user", "certs", "alice", "--config", a.configPath]);
        assert.equal(local.stdout, "");
      });
    } finally {
      await ca.cleanup();
    }
  },
);
