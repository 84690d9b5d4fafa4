/**
 * E2E: TLS on the inbound MX with a generated certificate: STARTTLS with swaks and with
 * `openssl s_client -starttls smtp`, implicit TLS with swaks --tls-on-connect, and the
 * `tls` value of each `listening` event.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { addUser, queueList, startTlsServer } from "../_helpers/server_process.ts";
import { findTool, toolTest } from "../_helpers/tools.ts";
import { swaks } from "./_swaks.ts";

await toolTest("serve offers STARTTLS and implicit TLS with a configured certificate", [
  "swaks",
  "openssl",
], async (t) => {
  const { ca, server, cleanup } = await startTlsServer({
    smtp: { listen: ["127.0.0.1:0", { address: "127.0.0.1:0", tls: "implicit" }] },
  });
  try {
    await addUser(server.configPath, "alice", ["example.org"]);
    const [plain, implicit] = server.smtp;
    assert(plain !== undefined && implicit !== undefined);

    await t.step("listening events say starttls and implicit", () => {
      assertEquals(server.smtp.map((l) => l.tls), ["starttls", "implicit"]);
    });

    await t.step("swaks --tls: STARTTLS, then the message is queued", async () => {
      const r = await swaks(plain.port, [
        "--tls",
        "--from",
        "tls@example.net",
        "--to",
        "bob@example.org",
      ]);
      assertEquals(r.code, 0, r.out);
      match(r.out, /STARTTLS/);
      match(r.out, /TLS started/);
      const list = await queueList(server.configPath) as { from: string }[];
      assert(list.some((m) => m.from === "tls@example.net"));
    });

    await t.step("swaks --tls-on-connect on the implicit-TLS listener", async () => {
      const r = await swaks(implicit.port, [
        "--tls-on-connect",
        "--from",
        "implicit@example.net",
        "--to",
        "bob@example.org",
      ]);
      assertEquals(r.code, 0, r.out);
      const list = await queueList(server.configPath) as { from: string }[];
      assert(list.some((m) => m.from === "implicit@example.net"));
    });

    await t.step("openssl s_client -starttls smtp completes a verified handshake", async () => {
      const bin = await findTool("openssl") ?? "openssl";
      const child = new Deno.Command(bin, {
        args: [
          "s_client",
          "-starttls",
          "smtp",
          "-connect",
          `127.0.0.1:${plain.port}`,
          "-CAfile",
          ca.caCertPath,
          "-verify_return_error",
          "-crlf",
          "-quiet",
        ],
        stdin: "piped",
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const writer = child.stdin.getWriter();
      await writer.write(new TextEncoder().encode("EHLO client.test\nQUIT\n"));
      await writer.close();
      const out = await child.output();
      const dec = new TextDecoder();
      const text = dec.decode(out.stdout) + dec.decode(out.stderr);
      assertEquals(out.code, 0, text);
      match(text, /verify return:1/);
      match(text, /^250[ -]/m, "EHLO answered over TLS");
      // stdout holds only what came under TLS (-quiet): STARTTLS must not be offered again.
      const underTls = dec.decode(out.stdout);
      assert(!/^250[ -]STARTTLS/m.test(underTls), `STARTTLS is not offered again:\n${text}`);
      match(text, /^221 /m);
    });
  } finally {
    await cleanup();
  }
});
