import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { runCustomer } from "../../src/odmr/customer.ts";
import type { FetchConfig } from "../../src/config/types.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { startScriptedProvider } from "../_helpers/scripted_provider.ts";
import type { ScriptedProviderOptions } from "../_helpers/scripted_provider.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";
import { makeTestCa } from "../_helpers/certs.ts";
import { aliceFetchConfig } from "../_helpers/customer_config.ts";
import { LAST_ENDS_TRANSACTION } from "../../src/wire/ehlo.ts";

const enc = new TextEncoder();
const USER = "alice";
const PASSWORD = "s3cret pass";

async function withDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "odmr-customer-" });
  try {
    await fn(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function passwordFile(dir: string, mode = 0o600, text = PASSWORD + "\n"): Promise<string> {
  const p = `${dir}/password`;
  await Deno.writeTextFile(p, text);
  await Deno.chmod(p, mode);
  return p;
}

/** aliceFetchConfig for both of her domains. */
function fetchConfig(
  dir: string,
  port: number,
  over: Partial<FetchConfig> = {},
): FetchConfig & { hostname: string } {
  return aliceFetchConfig(dir, port, { domains: ["example.org", "example.com"], ...over });
}

const FAST = { connectMs: 5_000, commandMs: 5_000, atrnMs: 5_000, receiverMs: 5_000 };

async function maildirFiles(root: string, sub: "new" | "tmp"): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const e of Deno.readDir(`${root}/${sub}`)) names.push(e.name);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
  return names.sort();
}

async function poll(
  dir: string,
  provider: ScriptedProviderOptions,
  over: Partial<FetchConfig> = {},
) {
  const p = await startScriptedProvider(provider);
  try {
    const outcome = await runCustomer(fetchConfig(dir, p.port, over), {
      log: NULL_LOGGER,
      timeouts: FAST,
    });
    return { outcome, sessions: p.sessions };
  } finally {
    await p.close();
  }
}

Deno.test("runCustomer() delivers into a Maildir and refuses a foreign recipient with 550 5.7.1", async () => {
  await withDir(async (dir) => {
    await passwordFile(dir);
    const body = enc.encode("Subject: hi\r\n\r\n.\r\n..dots\r\ncaf\u00e9\r\nend\r\n");
    const { outcome, sessions } = await poll(dir, {
      user: USER,
      password: PASSWORD,
      messages: [
        { from: "s@example.net", rcpts: ["a@example.org", "x@evil.test", "b@example.com"], body },
      ],
    });
    assertEquals(outcome.exitCode, 0, outcome.message);
    const s = sessions[0];
    assert(s !== undefined);
    assertEquals(s.atrnLine, "ATRN example.org,example.com");
    assertEquals(s.authMechanism, "CRAM-MD5");
    assertEquals(s.customerGreeting?.code, 220);
    // Our provider then pipelines its messages without RSET between them (#13).
    assert(s.customerEhlo?.lines.includes(LAST_ENDS_TRANSACTION));
    const r = s.results[0];
    assertEquals(r?.rcpt.map((x) => `${x.code} ${x.enhanced}`), [
      "250 2.1.5",
      "550 5.7.1",
      "250 2.1.5",
    ]);
    assertEquals(r?.final?.code, 250);
    assertEquals(s.quitReply?.code, 221);
    assertEquals(outcome.delivered, 2);
    assertEquals(outcome.foreign, 1);
    const [name] = await maildirFiles(`${dir}/Maildir`, "new");
    const got = await Deno.readTextFile(`${dir}/Maildir/new/${name}`);
    assertEquals(
      got,
      "Return-Path: <s@example.net>\nDelivered-To: a@example.org\nDelivered-To: b@example.com\n" +
        "Subject: hi\n\n.\n..dots\ncaf\u00e9\nend\n",
    );
  });
});

Deno.test("runCustomer() passes a local 451 upstream and exits 5", async () => {
  await withDir(async (dir) => {
    await passwordFile(dir);
    const capture = await startCaptureServer({ dataReply: () => "451 4.3.0 Local trouble" });
    try {
      const { outcome, sessions } = await poll(dir, {
        user: USER,
        password: PASSWORD,
        messages: [{ from: "s@example.net", rcpts: ["a@example.org"], body: enc.encode("x\r\n") }],
      }, { deliverTo: { kind: "smtp", host: capture.host, port: capture.port } });
      assertEquals(sessions[0]?.results[0]?.final?.code, 451);
      assertEquals(outcome.exitCode, 5);
      assertEquals(outcome.deferred, 1);
    } finally {
      await capture.close();
    }
  });
});

Deno.test("runCustomer() hands mail to a local SMTP server byte-exact (cut-through)", async () => {
  await withDir(async (dir) => {
    await passwordFile(dir);
    const capture = await startCaptureServer();
    const body = new Uint8Array(200_000);
    for (let i = 0; i < body.length; i++) {
      body[i] = i % 80 === 79 ? 10 : (i % 80 === 78 ? 13 : 33 + (i % 200));
    }
    try {
      const { outcome, sessions } = await poll(dir, {
        user: USER,
        password: PASSWORD,
        messages: [
          { from: "s@example.net", rcpts: ["a@example.org", "b@example.org"], body },
          { from: "", rcpts: ["c@example.com"], body: enc.encode(".\r\n") },
        ],
      }, { deliverTo: { kind: "smtp", host: capture.host, port: capture.port } });
      assertEquals(outcome.exitCode, 0, outcome.message);
      assertEquals(sessions[0]?.results.map((r) => r.final?.code), [250, 250]);
      assertEquals(capture.messages.length, 2);
      assertEquals(capture.messages[0]?.recipients, ["a@example.org", "b@example.org"]);
      assertEquals(capture.messages[0]?.body, body);
      assertEquals(capture.messages[1]?.body, enc.encode(".\r\n"));
      assertEquals(capture.connections, 1);
    } finally {
      await capture.close();
    }
  });
});

Deno.test("runCustomer() leaves nothing in Maildir new/ when the provider drops mid-DATA", async () => {
  await withDir(async (dir) => {
    await passwordFile(dir);
    const body = enc.encode("Subject: big\r\n\r\n" + "line\r\n".repeat(20_000));
    const { outcome } = await poll(dir, {
      user: USER,
      password: PASSWORD,
      messages: [
        { from: "s@example.net", rcpts: ["a@example.org"], body, dropAfterBodyBytes: 70_000 },
      ],
    });
    assertEquals(outcome.exitCode, 5);
    assertEquals(await maildirFiles(`${dir}/Maildir`, "new"), []);
    assertEquals(await maildirFiles(`${dir}/Maildir`, "tmp"), []);
  });
});

Deno.test("runCustomer() maps each ATRN reply to its exit code", async (t) => {
  const rows = [
    { atrn: "453 4.2.0 You have no mail", code: 0 },
    { atrn: "450 4.7.1 ATRN request refused", code: 4 },
    { atrn: "451 4.3.0 Unable to process ATRN request now", code: 5 },
    { atrn: "502 5.5.1 Command not implemented", code: 4 },
    { atrn: "530 5.7.0 Authentication required", code: 4 },
  ];
  for (const row of rows) {
    await t.step(`${row.atrn.slice(0, 3)} → exit ${row.code}`, async () => {
      await withDir(async (dir) => {
        await passwordFile(dir);
        const { outcome } = await poll(dir, {
          user: USER,
          password: PASSWORD,
          atrnReply: row.atrn,
        });
        assertEquals(outcome.exitCode, row.code, outcome.message);
      });
    });
  }
});

Deno.test("runCustomer() sends a bare ATRN when fetch.domains is empty", async () => {
  await withDir(async (dir) => {
    await passwordFile(dir);
    const { outcome, sessions } = await poll(dir, {
      user: USER,
      password: PASSWORD,
      atrnReply: "453 4.2.0 You have no mail",
    }, { domains: [] });
    assertEquals(outcome.exitCode, 0);
    assertEquals(sessions[0]?.atrnLine, "ATRN");
  });
});

Deno.test("runCustomer() exits 4 when ATRN is not offered", async () => {
  await withDir(async (dir) => {
    await passwordFile(dir);
    const { outcome } = await poll(dir, { user: USER, password: PASSWORD, offerAtrn: false });
    assertEquals(outcome.exitCode, 4);
    assert(outcome.message.includes("does not offer ATRN"), outcome.message);
  });
});

Deno.test("runCustomer() exits 3 on a wrong password and never sends ATRN", async () => {
  await withDir(async (dir) => {
    await passwordFile(dir, 0o600, "wrong\n");
    const { outcome, sessions } = await poll(dir, { user: USER, password: PASSWORD });
    assertEquals(outcome.exitCode, 3);
    assertEquals(sessions[0]?.atrnLine, undefined);
    assert(!outcome.message.includes("wrong"), "the password must not be in the message");
  });
});

Deno.test("runCustomer() exits 3 when only PLAIN is offered on a plaintext connection", async () => {
  await withDir(async (dir) => {
    await passwordFile(dir);
    const { outcome, sessions } = await poll(dir, {
      user: USER,
      password: PASSWORD,
      mechanisms: ["PLAIN", "LOGIN"],
    });
    assertEquals(outcome.exitCode, 3);
    assertEquals(sessions[0]?.authMechanism, undefined);
  });
});

Deno.test("runCustomer() exits 5 naming the server when the provider is down", async () => {
  await withDir(async (dir) => {
    await passwordFile(dir);
    const p = await startScriptedProvider({ user: USER, password: PASSWORD });
    const port = p.port;
    await p.close();
    const outcome = await runCustomer(fetchConfig(dir, port), { log: NULL_LOGGER, timeouts: FAST });
    assertEquals(outcome.exitCode, 5);
    assert(outcome.message.includes(`127.0.0.1:${port}`), outcome.message);
  });
});

Deno.test("runCustomer() refuses a password file readable by others (exit 2)", async () => {
  await withDir(async (dir) => {
    await passwordFile(dir, 0o644);
    const { outcome, sessions } = await poll(dir, { user: USER, password: PASSWORD });
    assertEquals(outcome.exitCode, 2);
    assert(outcome.message.includes("too open"), outcome.message);
    assert(outcome.message.includes("chmod 600"), outcome.message);
    assertEquals(sessions.length, 0);
  });
});

Deno.test("runCustomer() over TLS: STARTTLS verified with fetch.ca, wrong CA refused, implicit TLS, no downgrade", async (t) => {
  const ca = await makeTestCa();
  const other = await makeTestCa();
  if (ca === undefined || other === undefined) {
    // deno-lint-ignore no-console -- a skipped test prints its reason (docs/architecture.md "Conventions")
    console.log("skipped: openssl is not installed");
    return;
  }
  try {
    const tlsOpts = {
      cert: await Deno.readTextFile(ca.certPath),
      key: await Deno.readTextFile(ca.keyPath),
    };
    const run = async (dir: string, p: ScriptedProviderOptions, cfg: Partial<FetchConfig>) => {
      const provider = await startScriptedProvider(p);
      try {
        const outcome = await runCustomer(
          {
            ...fetchConfig(dir, provider.port),
            ...cfg,
            server: { host: "localhost", port: provider.port },
          },
          { log: NULL_LOGGER, timeouts: FAST },
        );
        return { outcome, sessions: provider.sessions };
      } finally {
        await provider.close();
      }
    };
    await t.step(
      "STARTTLS with the CA in fetch.ca verifies and then AUTH runs under TLS",
      async () => {
        await withDir(async (dir) => {
          await passwordFile(dir);
          const { outcome, sessions } = await run(
            dir,
            {
              user: USER,
              password: PASSWORD,
              tls: tlsOpts,
              atrnReply: "453 4.2.0 You have no mail",
            },
            { tls: "starttls", ca: ca.caCertPath },
          );
          assertEquals(outcome.exitCode, 0, outcome.message);
          assertEquals(sessions[0]?.wasSecureAtAuth, true);
        });
      },
    );
    await t.step(
      "a certificate from another CA is refused with exit 5 naming the host",
      async () => {
        await withDir(async (dir) => {
          await passwordFile(dir);
          const { outcome, sessions } = await run(
            dir,
            { user: USER, password: PASSWORD, tls: tlsOpts },
            { tls: "starttls", ca: other.caCertPath },
          );
          assertEquals(outcome.exitCode, 5);
          assert(outcome.message.includes('"localhost"'), outcome.message);
          assert(/certificate/i.test(outcome.message), outcome.message);
          assertEquals(sessions[0]?.authMechanism, undefined);
        });
      },
    );
    await t.step("a provider without STARTTLS is refused (no silent downgrade)", async () => {
      await withDir(async (dir) => {
        await passwordFile(dir);
        const { outcome, sessions } = await run(
          dir,
          { user: USER, password: PASSWORD },
          { tls: "starttls", ca: ca.caCertPath },
        );
        assertEquals(outcome.exitCode, 5);
        assert(outcome.message.includes("STARTTLS"), outcome.message);
        assertEquals(sessions[0]?.authMechanism, undefined);
      });
    });
    await t.step("implicit TLS verifies and uses PLAIN-capable AUTH under TLS", async () => {
      await withDir(async (dir) => {
        await passwordFile(dir);
        const body = enc.encode("Subject: tls\r\n\r\nok\r\n");
        const { outcome, sessions } = await run(
          dir,
          {
            user: USER,
            password: PASSWORD,
            tls: tlsOpts,
            implicitTls: true,
            mechanisms: ["PLAIN"],
            messages: [{ from: "s@example.net", rcpts: ["a@example.org"], body }],
          },
          { tls: "implicit", ca: ca.caCertPath },
        );
        assertEquals(outcome.exitCode, 0, outcome.message);
        assertEquals(sessions[0]?.authMechanism, "PLAIN");
        assertEquals(sessions[0]?.results[0]?.final?.code, 250);
        assertEquals((await maildirFiles(`${dir}/Maildir`, "new")).length, 1);
      });
    });
  } finally {
    await ca.cleanup();
    await other.cleanup();
  }
});
