/**
 * Two real processes: `serve` (provider) and `fetch --once` (customer) on 127.0.0.1. Mail
 * queued through the provider's SMTP port must arrive byte-exact (after the provider's
 * Received: header) at an SMTP sink, an LMTP sink and a Maildir; exit codes per outcome.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { queueList } from "../_helpers/server_process.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { endsWithBytes } from "../_helpers/bytes.ts";
import { EIGHT_BIT_BODY, type Listed, queueEightBitAndNull, withProvider } from "./_provider.ts";
import { runFetchOnce } from "../_helpers/fetch_process.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { submit } from "../_helpers/smtp_submit.ts";
import { testCaOrSkip } from "../_helpers/certs.ts";

const enc = new TextEncoder();

/** Runs `fetch --once` with a config written next to `dir`. */
const runFetch = runFetchOnce;

/** withProvider, and a temp dir for fetch's config, password and Maildir. */
function withServer(
  fn: (server: ServerProcess, dir: string) => Promise<void>,
  config: Record<string, unknown> = {},
): Promise<void> {
  return withProvider(async (server) => {
    const dir = await Deno.makeTempDir({ prefix: "odmr-fetch-e2e-" });
    try {
      await fn(server, dir);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  }, config);
}

/** A 10 MB body of 78-character lines (some starting with a dot). */
function bigBody(): Uint8Array {
  const line = enc.encode("." + "x".repeat(75) + "\r\n");
  const head = enc.encode("Subject: big\r\n\r\n");
  const n = Math.ceil((10 * 1024 * 1024) / line.length);
  const out = new Uint8Array(head.length + n * line.length);
  out.set(head);
  for (let i = 0; i < n; i++) out.set(line, head.length + i * line.length);
  return out;
}

Deno.test("fetch --once takes the mail into a local SMTP server byte-exact (8-bit, dot lines, 10 MB)", async () => {
  await withServer(async (server, dir) => {
    const big = bigBody();
    await queueEightBitAndNull(server, big);

    const capture = await startCaptureServer();
    try {
      const run = await runFetch(dir, {
        server: `127.0.0.1:${server.odmr[0]!.port}`,
        "deliver_to": `smtp://127.0.0.1:${capture.port}`,
      });
      assertEquals(run.code, 0, run.stderr);
      assertEquals(capture.messages.length, 2);
      const [m1, m2] = capture.messages;
      assertEquals(m1!.recipients, ["u1@example.org", "u3@example.com"]);
      assert(
        endsWithBytes(m1!.body, EIGHT_BIT_BODY),
        "8-bit body with dot lines arrives byte-exact",
      );
      assertEquals(m2!.mailFrom, "");
      assert(endsWithBytes(m2!.body, big), "10 MB body arrives byte-exact");
      assert(run.stderr.includes("event=delivered"), run.stderr);
    } finally {
      await capture.close();
    }
    const left = await queueList(server.configPath) as Listed;
    assertEquals(left.flatMap((m) => m.recipients.map((r) => r.address)), ["u2@bob.example"]);
    // Nothing left for alice now: ATRN 453, exit 0.
    const again = await runFetch(dir, {
      server: `127.0.0.1:${server.odmr[0]!.port}`,
      "deliver_to": `maildir:${dir}/Maildir`,
    });
    assertEquals(again.code, 0, again.stderr);
  });
});

Deno.test("fetch --once delivers into a Maildir (LF line ends) and over LMTP, all recipients in one transaction", async () => {
  await withServer(async (server, dir) => {
    const smtpPort = server.smtp[0]!.port;
    const body = enc.encode("Subject: m\r\n\r\n.dot\r\nline\r\n");
    const r = await submit({ port: smtpPort, from: "s@remote.test", to: ["a@example.org"], body });
    assert(r.final?.startsWith("250"));
    const run = await runFetch(dir, {
      server: `127.0.0.1:${server.odmr[0]!.port}`,
      "deliver_to": `maildir:${dir}/Maildir`,
    });
    assertEquals(run.code, 0, run.stderr);
    const names: string[] = [];
    for await (const e of Deno.readDir(`${dir}/Maildir/new`)) names.push(e.name);
    assertEquals(names.length, 1);
    const text = await Deno.readTextFile(`${dir}/Maildir/new/${names[0]}`);
    assert(text.startsWith("Return-Path: <s@remote.test>\nDelivered-To: a@example.org\n"), text);
    assert(text.endsWith("Subject: m\n\n.dot\nline\n"), text);
    assert(!text.includes("\r"));

    const r2 = await submit({
      port: smtpPort,
      from: "s@remote.test",
      to: ["a@example.org", "b@example.org", "c@example.com"],
      body,
    });
    assert(r2.final?.startsWith("250"));
    const lmtp = await startCaptureServer({ protocol: "lmtp" });
    try {
      const run2 = await runFetch(dir, {
        server: `127.0.0.1:${server.odmr[0]!.port}`,
        "deliver_to": `lmtp://127.0.0.1:${lmtp.port}`,
      });
      assertEquals(run2.code, 0, run2.stderr);
      // PRDR between provider and customer: one LMTP transaction for all three (#10).
      assertEquals(lmtp.messages.map((m) => m.recipients), [[
        "a@example.org",
        "b@example.org",
        "c@example.com",
      ]]);
      for (const m of lmtp.messages) assert(endsWithBytes(m.body, body));
    } finally {
      await lmtp.close();
    }
    assertEquals(await queueList(server.configPath), []);
  });
});

Deno.test("fetch --once exit codes: wrong password 3, foreign domain 4, provider down 5", async () => {
  await withServer(async (server, dir) => {
    const odmr = `127.0.0.1:${server.odmr[0]!.port}`;
    await Deno.writeTextFile(`${dir}/password`, "not-the-password\n", { mode: 0o600 });
    const wrong = await runFetch(dir, { server: odmr, "deliver_to": `maildir:${dir}/M` });
    assertEquals(wrong.code, 3, wrong.stderr);
    await Deno.writeTextFile(`${dir}/password`, "alice-pw\n", { mode: 0o600 });
    const foreign = await runFetch(dir, {
      server: odmr,
      domains: ["example.org", "bob.example"],
      "deliver_to": `maildir:${dir}/M`,
    });
    assertEquals(foreign.code, 4, foreign.stderr);
  });
  const dir = await Deno.makeTempDir({ prefix: "odmr-fetch-e2e-" });
  try {
    const down = await runFetch(dir, { server: "127.0.0.1:1", "deliver_to": `maildir:${dir}/M` });
    assertEquals(down.code, 5, down.stderr);
    assert(down.stderr.includes("127.0.0.1:1"), down.stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch --once with STARTTLS verifies the provider with fetch.ca; a wrong CA exits 5", async () => {
  const name = "fetch --once with STARTTLS";
  const ca = await testCaOrSkip(name);
  const other = await testCaOrSkip(name);
  if (ca === undefined || other === undefined) return;
  try {
    await withServer(async (server, dir) => {
      const r = await submit({
        port: server.smtp[0]!.port,
        from: "s@remote.test",
        to: ["a@example.org"],
        body: EIGHT_BIT_BODY,
        mailParams: "BODY=8BITMIME",
      });
      assert(r.final?.startsWith("250"));
      const odmr = `localhost:${server.odmr[0]!.port}`;
      const bad = await runFetch(dir, {
        server: odmr,
        tls: "starttls",
        ca: other.caCertPath,
        "deliver_to": `maildir:${dir}/M`,
      });
      assertEquals(bad.code, 5, bad.stderr);
      assert(bad.stderr.includes('"localhost"'), bad.stderr);
      const good = await runFetch(dir, {
        server: odmr,
        tls: "starttls",
        ca: ca.caCertPath,
        "deliver_to": `maildir:${dir}/M`,
      });
      assertEquals(good.code, 0, good.stderr);
      let files = 0;
      for await (const _ of Deno.readDir(`${dir}/M/new`)) files++;
      assertEquals(files, 1);
    }, { tls: { cert: ca.certPath, key: ca.keyPath } });
  } finally {
    await ca.cleanup();
    await other.cleanup();
  }
});
