/**
 * E2E signals of the real `serve` (#11): SIGHUP reloads tls.cert/tls.key (new handshakes get
 * the new pair, an open TLS session goes on, bad new files keep the old pair and log an
 * error) and never stops serve; changed files are noticed without a signal; the expiry metric
 * follows. SIGTERM: idle sessions hear 421 at once, a silent STARTTLS client is closed, a busy
 * one is cut after the grace, and serve exits 0 within grace + 1 s whatever the peers do.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { X509Certificate } from "node:crypto";
import { addUser, queueList, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { toolTest } from "../_helpers/tools.ts";
import { makeRenewal, makeSelfSigned } from "../_helpers/self_signed.ts";
import { RawClient } from "../security/_raw.ts";
import { connect } from "../../src/net/conn.ts";
import type { Conn } from "../../src/net/conn.ts";
import { SHUTDOWN_GRACE_MS } from "../../src/cli/serve.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** SHA-256 fingerprint of the certificate `openssl s_client` was shown on `port`. */
async function servedFingerprint(port: number, mode: "starttls" | "implicit"): Promise<string> {
  const out = await new Deno.Command("openssl", {
    args: [
      "s_client",
      ...(mode === "starttls" ? ["-starttls", "smtp"] : []),
      "-connect",
      `127.0.0.1:${port}`,
      "-servername",
      "mx.test",
    ],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = dec.decode(out.stdout);
  const pem = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(text)?.[0];
  assert(pem !== undefined, `a certificate was served:\n${text}${dec.decode(out.stderr)}`);
  return new X509Certificate(pem).fingerprint256;
}

async function fileFingerprint(path: string): Promise<string> {
  return new X509Certificate(await Deno.readTextFile(path)).fingerprint256;
}

/** Waits (bounded) until the server's log has a line matching `re` after `from` characters. */
async function waitForLog(
  server: ServerProcess,
  re: RegExp,
  opts: { from: number; timeoutMs: number },
): Promise<string> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const line = server.logs().slice(opts.from).split("\n").find((l) => re.test(l));
    if (line !== undefined) return line;
    if (Date.now() > deadline) throw new Error(`no log line ${re} within ${opts.timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Reads one SMTP reply (last line) from a Conn, with a deadline. */
async function readReply(conn: Conn, timeoutMs = 5_000): Promise<string> {
  let text = "";
  for (;;) {
    const m = /(?:^|\r\n)(\d{3}) [^\r\n]*\r\n$/.exec(text);
    if (m) return text.trimEnd().split("\r\n").at(-1) as string;
    const chunk = await conn.read(timeoutMs);
    if (chunk === null) return text;
    text += dec.decode(chunk);
  }
}

async function metricValue(port: number, name: string): Promise<number | undefined> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name} (\\S+)$`, "m").exec(text);
  return m ? Number(m[1]) : undefined;
}

await toolTest("serve: SIGHUP reloads the certificate and never stops serve (#11)", [
  "openssl",
], async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-hup-" });
  const { a, b, live: { cert, key } } = await makeRenewal(dir);
  const server = await startServer({
    config: {
      tls: { cert, key },
      smtp: { listen: ["127.0.0.1:0", { address: "127.0.0.1:0", tls: "implicit" }] },
      metrics: { listen: "127.0.0.1:0" },
    },
  });
  let open: Conn | undefined;
  try {
    const [plain, implicit] = server.smtp;
    assert(plain !== undefined && implicit !== undefined);
    const metricsPort = server.listening.find((l) => l.proto === "metrics")!.port;
    const expiry = (p: string) => Math.floor(new X509Certificate(p).validToDate.getTime() / 1000);

    await t.step("the first pair is served and its expiry is the metric", async () => {
      assertEquals(await servedFingerprint(plain.port, "starttls"), await fileFingerprint(a.cert));
      assertEquals(
        await metricValue(metricsPort, "odmr_relay_tls_cert_expiry_timestamp_seconds"),
        expiry(await Deno.readTextFile(a.cert)),
      );
    });

    // A session under TLS with the first pair, kept open across the reloads.
    open = (await connect({ host: "127.0.0.1", port: plain.port })).conn;
    match(await readReply(open), /^220 /);
    await open.write(enc.encode("EHLO open.test\r\n"));
    match(await readReply(open), /^250 /);
    await open.write(enc.encode("STARTTLS\r\n"));
    match(await readReply(open), /^220 /);
    await open.startTlsClient({ servername: "mx.test", rejectUnauthorized: false });
    await open.write(enc.encode("EHLO open.test\r\n"));
    match(await readReply(open), /^250 /);

    await t.step("SIGHUP after a renewal: new handshakes get the new pair", async () => {
      await Deno.copyFile(b.cert, cert);
      await Deno.copyFile(b.key, key);
      const from = server.logs().length;
      Deno.kill(server.pid, "SIGHUP");
      await waitForLog(server, /tls_reloaded/, { from, timeoutMs: 10_000 });
      const want = await fileFingerprint(b.cert);
      assertEquals(await servedFingerprint(plain.port, "starttls"), want);
      assertEquals(await servedFingerprint(implicit.port, "implicit"), want);
      assertEquals(
        await metricValue(metricsPort, "odmr_relay_tls_cert_expiry_timestamp_seconds"),
        expiry(await Deno.readTextFile(b.cert)),
      );
    });

    await t.step("the session opened before the reload goes on", async () => {
      await open!.write(enc.encode("NOOP\r\n"));
      match(await readReply(open!), /^250 /);
    });

    await t.step("SIGHUP with a bad new pair keeps the old one and logs an error", async () => {
      await Deno.writeTextFile(cert, "not a certificate\n");
      const from = server.logs().length;
      Deno.kill(server.pid, "SIGHUP");
      const line = await waitForLog(server, /tls_reload_failed/, { from, timeoutMs: 10_000 });
      match(line, / error /);
      assert(line.includes(cert), line);
      assertEquals(await servedFingerprint(plain.port, "starttls"), await fileFingerprint(b.cert));
    });

    await t.step("changed files are noticed without a signal", async () => {
      const from = server.logs().length;
      await Deno.copyFile(a.cert, cert);
      await Deno.copyFile(a.key, key);
      // CERT_CHECK_INTERVAL_MS is 30 s: noticed within a minute.
      const line = await waitForLog(server, /tls_reloaded/, { from, timeoutMs: 45_000 });
      match(line, /cause=file_changed/);
      assertEquals(await servedFingerprint(plain.port, "starttls"), await fileFingerprint(a.cert));
    });

    await t.step("serve is still the same process and stops cleanly", async () => {
      await open!.write(enc.encode("QUIT\r\n"));
      match(await readReply(open!), /^221 /);
      assertEquals(await server.stop(), 0, server.logs());
    });
  } finally {
    open?.destroy();
    await server.stop();
    await removeTestFiles(server);
    await Deno.remove(dir, { recursive: true });
  }
});

await toolTest(
  "serve: SIGTERM closes idle sessions with 421 at once and exits within grace + 1 s (#11)",
  ["openssl"],
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "odmr-term-" });
    const a = await makeSelfSigned(dir, "a", { dnsName: "mx.test", days: 30 });
    const server = await startServer({ config: { tls: { cert: a.cert, key: a.key } } });
    const clients: RawClient[] = [];
    try {
      await addUser(server.configPath, "alice", ["example.org"]);
      const smtpPort = server.smtp[0]!.port;
      const odmrPort = server.odmr[0]!.port;
      const greet = async (port: number) => {
        const c = await RawClient.connect(port);
        clients.push(c);
        match(await c.reply(), /^220 /);
        return c;
      };
      // Idle on the MX: greeted, said EHLO, then silent.
      const idle = await greet(smtpPort);
      match(await idle.command("EHLO idle.test"), /^250 /);
      // Idle on the ODMR port: greeted, silent.
      const idleOdmr = await greet(odmrPort);
      // Said STARTTLS and went silent (no ClientHello).
      const tlsSilent = await greet(smtpPort);
      match(await tlsSilent.command("EHLO tls.test"), /^250 /);
      match(await tlsSilent.command("STARTTLS"), /^220 /);
      // Busy: in the middle of DATA, then silent.
      const busy = await greet(smtpPort);
      match(await busy.command("EHLO busy.test"), /^250 /);
      match(await busy.command("MAIL FROM:<s@remote.test>"), /^250 /);
      match(await busy.command("RCPT TO:<bob@example.org>"), /^250 /);
      match(await busy.command("DATA"), /^354 /);
      await busy.write("Subject: half\r\n\r\nhalf a message\r\n");

      const started = Date.now();
      const stopped = server.stop();
      for (const [name, c] of [["idle", idle], ["idle odmr", idleOdmr]] as const) {
        match(await c.reply(2_000), /^421 4\.3\.2 /, name);
        assert(await c.waitClosed(2_000), `${name} is closed`);
      }
      assert(await tlsSilent.waitClosed(2_000), "the silent STARTTLS client is closed at once");
      const idleDoneMs = Date.now() - started;
      assert(idleDoneMs < 2_000, `idle sessions ended after ${idleDoneMs} ms`);
      assert(!busy.isClosed, "the busy session gets the grace");
      const code = await stopped;
      const tookMs = Date.now() - started;
      assertEquals(code, 0, server.logs());
      assert(busy.isClosed, "the busy session was cut");
      assert(tookMs >= SHUTDOWN_GRACE_MS - 500, `the busy one had its grace: ${tookMs} ms`);
      assert(tookMs <= SHUTDOWN_GRACE_MS + 1_000, `exit within grace + 1 s: took ${tookMs} ms`);
      match(server.logs(), /event=sessions_cut count=1 /);
      // Nothing was acknowledged, so nothing is queued.
      assertEquals(await queueList(server.configPath), []);
    } finally {
      for (const c of clients) c.close();
      await server.stop();
      await removeTestFiles(server);
      await Deno.remove(dir, { recursive: true });
    }
  },
);
