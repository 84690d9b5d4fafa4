/**
 * The real fetchmail (Debian 6.4.37, `protocol ODMR`) as the customer of the real `serve`:
 * it authenticates with CRAM-MD5, says ATRN, and splices the reversed session to a local SMTP
 * server (here the independent capture server), whose received bytes must equal what was
 * queued after the relay's Received: header. Also fetchmail's exit code for every ATRN outcome.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { queueList } from "../_helpers/server_process.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { endsWithBytes } from "../_helpers/bytes.ts";
import { EIGHT_BIT_BODY, type Listed, queueEightBitAndNull, withProvider } from "./_provider.ts";
import { toolTest } from "../_helpers/tools.ts";
import { runFetchmail } from "../_helpers/fetchmail.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import type { CaptureServer } from "../_helpers/capture_smtp.ts";
import { submit } from "../_helpers/smtp_submit.ts";
import { makeTestCa } from "../_helpers/certs.ts";
import type { TestCa } from "../_helpers/certs.ts";

const enc = new TextEncoder();

/** withProvider, and the capture server fetchmail hands the mail to. */
function withSetup(
  fn: (server: ServerProcess, capture: CaptureServer) => Promise<void>,
  config: Record<string, unknown> = {},
): Promise<void> {
  return withProvider(async (server) => {
    const capture = await startCaptureServer();
    try {
      await fn(server, capture);
    } finally {
      await capture.close();
    }
  }, config);
}

await toolTest(
  "fetchmail takes the mail of its domains byte-exact, and only those recipients",
  ["fetchmail"],
  async () => {
    await withSetup(async (server, capture) => {
      const plain = enc.encode("Subject: plain\r\n\r\nhello\r\n");
      await queueEightBitAndNull(server, plain);

      const run = await runFetchmail({
        port: server.odmr[0]!.port,
        smtpPort: capture.port,
        domains: ["example.org"],
      });
      assertEquals(run.code, 0, run.output);
      await capture.waitForMessages(2);
      const [m1, m2] = capture.messages;
      assertEquals(m1!.recipients, ["u1@example.org"]);
      assert(
        endsWithBytes(m1!.body, EIGHT_BIT_BODY),
        "8-bit body with dot lines arrives byte-exact",
      );
      assertEquals(m2!.mailFrom, "");
      assertEquals(m2!.recipients, ["u4@example.org"]);
      assert(endsWithBytes(m2!.body, plain));

      const left = await queueList(server.configPath) as Listed;
      assertEquals(
        left.flatMap((m) => m.recipients.map((r) => r.address)).sort(),
        ["u2@bob.example", "u3@example.com"],
      );
    });
  },
);

await toolTest("fetchmail receives a 10 MB message byte-exact", ["fetchmail"], async () => {
  await withSetup(async (server, capture) => {
    const line = enc.encode("0123456789".repeat(7) + "ABCDEFGH\r\n"); // 80 bytes a line
    const body = new Uint8Array(10 * 1024 * 1024);
    body.set(enc.encode("Subject: big\r\n\r\n"));
    for (let off = 16; off + line.length <= body.length; off += line.length) body.set(line, off);
    const tailStart = body.length - ((body.length - 16) % line.length);
    body.fill(0x2e, tailStart, body.length - 2); // a last line of dots, to be stuffed
    body[body.length - 2] = 13;
    body[body.length - 1] = 10;
    const r = await submit({
      port: server.smtp[0]!.port,
      from: "s@remote.test",
      to: ["big@example.org"],
      body,
    });
    assert(r.final?.startsWith("250"), r.replies.join(" | "));
    const run = await runFetchmail({
      port: server.odmr[0]!.port,
      smtpPort: capture.port,
      domains: ["example.org"],
    });
    assertEquals(run.code, 0, run.output);
    await capture.waitForMessages(1, 60_000);
    assert(endsWithBytes(capture.messages[0]!.body, body), "10 MB body arrives byte-exact");
  }, { smtp: { max_message_size: "20MB" } });
});

await toolTest(
  "fetchmail's exit code for each ATRN outcome: 453 → 1 or 0, 450 → 4, 451 → 8, 535 → 128",
  ["fetchmail"],
  async (t) => {
    await withSetup(async (server, capture) => {
      const port = server.odmr[0]!.port;
      await t.step("453 no mail: fetchmail reports success without mail", async () => {
        const run = await runFetchmail({ port, smtpPort: capture.port, domains: ["example.org"] });
        // fetchmail maps ODMR 453 to PS_NOMAIL: exit 1 ("no mail"), not an error.
        assert(run.code === 0 || run.code === 1, `exit ${run.code}\n${run.output}`);
      });
      await t.step("450 domain not owned: protocol error, exit 4", async () => {
        const run = await runFetchmail({ port, smtpPort: capture.port, domains: ["bob.example"] });
        assertEquals(run.code, 4, run.output);
      });
      await t.step(
        "535 wrong password: fetchmail reports an authentication failure, exit 128",
        async () => {
          const run = await runFetchmail({
            port,
            smtpPort: capture.port,
            domains: ["example.org"],
            password: "wrong",
          });
          // fetchmail 6.4.37 exits 128 after a 535 in ODMR mode (as issue #4 lists), not 3.
          assertEquals(run.code, 128, run.output);
        },
      );
      await t.step("451 domain busy: fetchmail excludes it, exit 8", async () => {
        const r = await submit({
          port: server.smtp[0]!.port,
          from: "s@remote.test",
          to: ["busy@example.org"],
          body: enc.encode("x\r\n"),
        });
        assert(r.final?.startsWith("250"));
        // Hold the domain with a raw customer that authenticates, says ATRN and then stalls.
        const holder = await holdDomain(port);
        try {
          const run = await runFetchmail({
            port,
            smtpPort: capture.port,
            domains: ["example.org"],
          });
          assertEquals(run.code, 8, run.output);
        } finally {
          holder.close();
        }
      });
    });
  },
);

await toolTest(
  "fetchmail with ssl takes the mail over an implicit-TLS ODMR listener",
  ["fetchmail", "openssl"],
  async () => {
    const ca: TestCa | undefined = await makeTestCa();
    if (ca === undefined) throw new Error("openssl could not make a test CA");
    try {
      await withSetup(async (server, capture) => {
        const body = enc.encode("Subject: tls\r\n\r\nover TLS\r\n.dot\r\n");
        for (let i = 0; i < 3; i++) {
          const r = await submit({
            port: server.smtp[0]!.port,
            from: "s@remote.test",
            to: [`t${i}@example.org`],
            body,
          });
          assert(r.final?.startsWith("250"));
        }
        const tlsListener = server.listening.find((l) =>
          l.proto === "odmr" && l.tls === "implicit"
        );
        assert(tlsListener, "an implicit-TLS ODMR listener is announced");
        const run = await runFetchmail({
          port: tlsListener.port,
          smtpPort: capture.port,
          domains: ["example.org"],
          ssl: { caFile: ca.caCertPath },
        });
        assertEquals(run.code, 0, run.output);
        await capture.waitForMessages(3);
        for (const m of capture.messages) assert(endsWithBytes(m.body, body));
        assertEquals(await queueList(server.configPath), []);
      }, {
        tls: { cert: ca.certPath, key: ca.keyPath },
        odmr: { listen: ["127.0.0.1:0", { address: "127.0.0.1:0", tls: "implicit" }] },
      });
    } finally {
      await ca.cleanup();
    }
  },
);

/** Authenticates as alice with CRAM-MD5 and takes the lease with ATRN, then says nothing. */
async function holdDomain(port: number): Promise<Deno.Conn> {
  const { createHmac } = await import("node:crypto");
  const { Buffer } = await import("node:buffer");
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const dec = new TextDecoder();
  let pending = "";
  const readReply = async (): Promise<string> => {
    for (let i = 0; i < 100; i++) {
      const lines = pending.split("\r\n");
      const idx = lines.findIndex((l, n) => n < lines.length - 1 && l[3] === " ");
      if (idx >= 0) {
        pending = lines.slice(idx + 1).join("\r\n");
        return lines[idx]!; // findIndex found it
      }
      const buf = new Uint8Array(4096);
      const n = await conn.read(buf);
      if (n === null) throw new Error("closed");
      pending += dec.decode(buf.subarray(0, n));
    }
    throw new Error("no reply");
  };
  const send = (s: string) => conn.write(enc.encode(s + "\r\n"));
  await readReply();
  await send("EHLO holder.test");
  await readReply();
  await send("AUTH CRAM-MD5");
  const challenge = Buffer.from((await readReply()).slice(4), "base64");
  const digest = createHmac("md5", "alice-pw").update(challenge).digest("hex");
  await send(Buffer.from(`alice ${digest}`).toString("base64"));
  const auth = await readReply();
  if (!auth.startsWith("235")) throw new Error(`holder AUTH failed: ${auth}`);
  await send("ATRN example.org");
  const atrn = await readReply();
  if (!atrn.startsWith("250")) throw new Error(`holder ATRN failed: ${atrn}`);
  return conn;
}
