/**
 * (#16) AUTH EXTERNAL on the provider, real `serve` and real TLS through `openssl s_client`:
 * a client certificate pinned with `user certs --add` logs in without a password (implicit TLS
 * and STARTTLS); an unpinned one gets 535; without a certificate, or in plaintext, EXTERNAL is
 * not advertised and `AUTH EXTERNAL` gets 504. Plus the `user certs` CLI.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { addUser, runMain, startTlsServer } from "../_helpers/server_process.ts";
import { makeSelfSigned } from "../_helpers/self_signed.ts";
import { toolTest } from "../_helpers/tools.ts";
import { RawClient } from "../security/_raw.ts";
import { sClient } from "../_helpers/s_client.ts";

await toolTest("(#16) AUTH EXTERNAL: a pinned client certificate logs in, others do not", [
  "openssl",
], async (t) => {
  const { ca, server, cleanup } = await startTlsServer({
    odmr: { listen: ["127.0.0.1:0", { address: "127.0.0.1:0", tls: "implicit" }] },
  });
  try {
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    await addUser(server.configPath, "bob", ["bob.example"], "bob-pw");
    const pinned = await makeSelfSigned(ca.dir, "pi", { dnsName: "pi", days: 2, rsa: true });
    const stranger = await makeSelfSigned(ca.dir, "stranger", {
      dnsName: "stranger",
      days: 2,
      rsa: true,
    });
    const want = new X509Certificate(await Deno.readTextFile(pinned.cert)).fingerprint256;
    const [plain, implicit] = server.odmr;
    assert(plain !== undefined && implicit !== undefined);
    const certs = (...args: string[]) =>
      runMain(["user", "certs", ...args, "--config", server.configPath]);

    await t.step("user certs --add pins and prints the SHA-256 fingerprint", async () => {
      const r = await certs("alice", "--add", pinned.cert);
      assertEquals(r.code, 0, r.stderr);
      assert(r.stdout.includes(want), r.stdout);
      assertEquals((await certs("alice")).stdout, `${want}\n`);
      const listed = await runMain(["user", "list", "--json", "--config", server.configPath]);
      assertEquals(listed.code, 0, listed.stderr);
      const byName = new Map(
        (JSON.parse(listed.stdout) as { name: string; certificates: string[] }[])
          .map((u) => [u.name, u.certificates]),
      );
      assertEquals(byName.get("alice"), [want], "user list --json shows the pinned fingerprint");
      assertEquals(byName.get("bob"), []);
      const again = await certs("bob", "--add", pinned.cert);
      assertEquals(again.code, 1, "one user per fingerprint");
      match(again.stderr, /already pinned for user "alice"/);
    });
    await t.step(
      "implicit TLS with the pinned certificate: EXTERNAL offered, 235, ATRN",
      async () => {
        const out = await sClient(implicit.port, [
          "EHLO pi.test",
          "AUTH EXTERNAL =",
          "ATRN",
          "QUIT",
        ], {
          cert: pinned,
        });
        match(out, /^250-AUTH .*\bEXTERNAL\b/m);
        match(out, /^235 /m);
        match(out, /^453 /m, "authenticated as alice: her (empty) queue answers");
      },
    );
    await t.step("STARTTLS with the pinned certificate: EXTERNAL offered, 235", async () => {
      const out = await sClient(plain.port, ["EHLO pi.test", "AUTH EXTERNAL =", "QUIT"], {
        cert: pinned,
        starttls: true,
      });
      match(out, /^250-AUTH .*\bEXTERNAL\b/m);
      match(out, /^235 /m);
    });
    await t.step("an authorization identity other than the pinned user: 535", async () => {
      const bobId = btoa("bob");
      const out = await sClient(implicit.port, ["EHLO pi.test", `AUTH EXTERNAL ${bobId}`, "QUIT"], {
        cert: pinned,
      });
      match(out, /^535 5\.7\.8 /m);
    });
    await t.step("an unpinned certificate: EXTERNAL offered, 535 5.7.8", async () => {
      const out = await sClient(implicit.port, ["EHLO s.test", "AUTH EXTERNAL =", "QUIT"], {
        cert: stranger,
      });
      match(out, /^250-AUTH .*\bEXTERNAL\b/m);
      match(out, /^535 5\.7\.8 /m);
    });
    await t.step("no certificate: EXTERNAL not offered, 504; passwords still work", async () => {
      const out = await sClient(implicit.port, ["EHLO n.test", "AUTH EXTERNAL =", "QUIT"], {});
      match(out, /^250-AUTH /m);
      assert(!/EXTERNAL/.test(out.split("\n").find((l) => l.startsWith("250-AUTH")) ?? ""));
      match(out, /^504 5\.5\.4 /m);
      const plainOk = btoa("\0alice\0alice-pw");
      const pw = await sClient(implicit.port, ["EHLO n.test", `AUTH PLAIN ${plainOk}`, "QUIT"], {});
      match(pw, /^235 /m);
    });
    await t.step("plaintext: EXTERNAL not offered, 504", async () => {
      const c = await RawClient.connect(plain.port);
      try {
        match(await c.reply(), /^220 /);
        await c.write("EHLO p.test\r\n");
        const ehlo: string[] = [];
        for (;;) {
          const before = c.pending;
          const last = await c.reply();
          ehlo.push(before, last);
          if (last.startsWith("250 ")) break;
        }
        assert(!ehlo.join("\n").includes("EXTERNAL"), ehlo.join("\n"));
        match(await c.command("AUTH EXTERNAL ="), /^504 5\.5\.4 /);
      } finally {
        c.close();
      }
    });
    await t.step("user certs --remove unpins; a second remove is refused", async () => {
      assertEquals((await certs("alice", "--remove", want)).code, 0);
      assertEquals((await certs("alice")).stdout, "");
      assertEquals((await certs("alice", "--remove", want)).code, 1);
      const out = await sClient(implicit.port, ["EHLO pi.test", "AUTH EXTERNAL =", "QUIT"], {
        cert: pinned,
      });
      match(out, /^535 5\.7\.8 /m);
    });
  } finally {
    await cleanup();
  }
});
