import { deepStrictEqual as assertEquals, ok as assert, rejects, throws } from "node:assert/strict";
import { ConfigError, loadConfig } from "../../src/config/load.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { CONFIG_BASE } from "./_parse.ts";

function parse(text: string) {
  return parseConfig(text, CONFIG_BASE);
}

function errorOf(text: string): ConfigError {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

Deno.test("parseConfig() of an empty file gives the embedded defaults of README.md", () => {
  const c = parse("");
  assertEquals(c.hostname, "box.local");
  assertEquals(c.dataDir, "/etc/data");
  assertEquals(c.log, { level: "info", format: "text" });
  assertEquals(c.tls, undefined);
  assertEquals(c.smtp, {
    listen: [{ host: "127.0.0.1", port: 2525, tls: "none" }],
    maxMessageSize: 50 * 1024 * 1024,
    maxRecipients: 100,
    maxConnections: 200,
    maxConnectionsPerIp: 20,
    timeoutMs: 300_000,
    maxLineLength: 998,
  });
  assertEquals(c.odmr, {
    listen: [{ host: "127.0.0.1", port: 3366, tls: "none" }],
    requireTls: false,
    authTimeoutMs: 60_000,
    drainTimeoutMs: 600_000,
  });
  assertEquals(c.queue, {
    maxAgeMs: 30 * 86_400_000,
    quota: undefined,
    backend: "sqlite",
    postgres: undefined,
    leaseMs: 300_000,
    spaceReserveBytes: 8 * 1024 * 1024,
  });
  assertEquals(c.domains, new Map());
  assertEquals(c.metrics, undefined);
  assertEquals(c.fetch, undefined);
});

Deno.test("parseConfig() reads every key of README.md", () => {
  const c = parse(`
hostname: mx.example.net
data_dir: /var/lib/odmr
log: {level: debug, format: json}
tls: {cert: certs/full.pem, key: /k.pem}
smtp:
  listen: ["0.0.0.0:25", {address: "[::1]:465", tls: implicit}]
  max_message_size: 10MB
  max_recipients: 5
  max_connections: 7
  max_connections_per_ip: 2
  timeout: 30s
  max_line_length: 500
odmr:
  listen: [{address: "0.0.0.0:366", tls: implicit, line_records: true}]
  require_tls: true
  auth_timeout: 20s
  drain_timeout: 90s
queue: {max_age: 2h}
metrics: {listen: "127.0.0.1:9366"}
fetch:
  server: relay.example.net
  tls: implicit
  ca: ca.pem
  tls_server_name: Relay.Example.NET
  user: alice
  password_file: /etc/odmr-relay/password
  domains: [Example.ORG, bücher.example]
  deliver_to: maildir:/home/alice/Maildir
  interval: 1m
`);
  assertEquals(c.hostname, "mx.example.net");
  assertEquals(c.dataDir, "/var/lib/odmr");
  assertEquals(c.log, { level: "debug", format: "json" });
  assertEquals(c.tls, { cert: "/etc/certs/full.pem", key: "/k.pem" });
  assertEquals(c.smtp.listen, [
    { host: "0.0.0.0", port: 25, tls: "none" },
    { host: "::1", port: 465, tls: "implicit" },
  ]);
  assertEquals(c.smtp.maxMessageSize, 10 * 1024 * 1024);
  assertEquals(c.smtp.timeoutMs, 30_000);
  assertEquals(c.smtp.maxLineLength, 500);
  assertEquals(c.odmr, {
    listen: [{ host: "0.0.0.0", port: 366, tls: "implicit", lineRecords: true }],
    requireTls: true,
    authTimeoutMs: 20_000,
    drainTimeoutMs: 90_000,
  });
  assertEquals(c.queue.maxAgeMs, 7_200_000);
  assertEquals(c.metrics, { listen: { host: "127.0.0.1", port: 9366 } });
  assertEquals(c.fetch, {
    server: { host: "relay.example.net", port: 366 },
    tls: "implicit",
    ca: "/etc/ca.pem",
    tlsServerName: "relay.example.net",
    user: "alice",
    passwordFile: "/etc/odmr-relay/password",
    domains: ["example.org", "xn--bcher-kva.example"],
    deliverTo: { kind: "maildir", path: "/home/alice/Maildir" },
    intervalMs: 60_000,
  });
});

Deno.test("parseConfig() reads every fetch.deliver_to form", async (t) => {
  const rows = [
    { input: "smtp://127.0.0.1:25", want: { kind: "smtp", host: "127.0.0.1", port: 25 } },
    { input: "smtp://mail.lan", want: { kind: "smtp", host: "mail.lan", port: 25 } },
    { input: "lmtp://[::1]:24", want: { kind: "lmtp", host: "::1", port: 24 } },
    { input: "lmtp+unix:/run/dovecot/lmtp", want: { kind: "lmtpUnix", path: "/run/dovecot/lmtp" } },
    { input: "maildir:Maildir", want: { kind: "maildir", path: "/etc/Maildir" } },
  ];
  for (const row of rows) {
    await t.step(row.input, () => {
      const c = parse(
        `fetch: {server: "r:366", user: a, password_file: /p, deliver_to: "${row.input}"}`,
      );
      assertEquals(c.fetch?.deliverTo, row.want);
    });
  }
});

Deno.test("parseConfig() names the file and the key path in every error", async (t) => {
  const rows: { text: string; want: string; why: string }[] = [
    {
      why: "a listen entry that is not HOST:PORT",
      text: `smtp: {listen: ["127.0.0.1:25", "x"]}`,
      want:
        `Cannot load config "/etc/odmr.yaml": smtp.listen[1] must be "HOST:PORT": current value is "x"`,
    },
    {
      why: "an unknown key close to a known one",
      text: "smtp: {max_recipient: 5}",
      want:
        `Cannot load config "/etc/odmr.yaml": smtp.max_recipient is not a known key: did you mean "smtp.max_recipients"?`,
    },
    {
      why: "an unknown top-level key close to a known one",
      text: "data-dir: /x",
      want:
        `Cannot load config "/etc/odmr.yaml": data-dir is not a known key: did you mean "data_dir"?`,
    },
    {
      why: "an unknown key far from every known one",
      text: "queue: {colour: red}",
      want:
        `Cannot load config "/etc/odmr.yaml": queue.colour is not a known key (known here: max_age, quota, backend, postgres, lease_time, space_reserve)`,
    },
    {
      why: "a bad duration",
      text: "smtp: {timeout: 5 minutes}",
      want:
        `Cannot load config "/etc/odmr.yaml": smtp.timeout must be a duration such as 30s, 5m, 2h or 30d: current value is "5 minutes"`,
    },
    {
      why: "a bad size",
      text: "smtp: {max_message_size: lots}",
      want:
        `Cannot load config "/etc/odmr.yaml": smtp.max_message_size must be a size in bytes or such as 512KB or 50MB: current value is "lots"`,
    },
    {
      why: "an integer out of range (the limit at N+1)",
      text: "smtp: {max_recipients: 100001}",
      want:
        `Cannot load config "/etc/odmr.yaml": smtp.max_recipients must be an integer 1-100000: current value is 100001`,
    },
    {
      why: "smtp.max_line_length over 998 says why it cannot be (#10)",
      text: "smtp: {max_line_length: 999}",
      want:
        `Cannot load config "/etc/odmr.yaml": smtp.max_line_length must be at most 998 (octets without CRLF): longer lines cannot be relayed with SMTP DATA, so mail accepted with them would be refused after the MX said 250: current value is 999`,
    },
    {
      why: "smtp.max_line_length under 78",
      text: "smtp: {max_line_length: 77}",
      want:
        `Cannot load config "/etc/odmr.yaml": smtp.max_line_length must be an integer 78-998: current value is 77`,
    },
    {
      why: "implicit TLS without a certificate",
      text: `odmr: {listen: [{address: "0.0.0.0:366", tls: implicit}]}`,
      want:
        `Cannot load config "/etc/odmr.yaml": odmr.listen[0].tls is implicit, which needs tls.cert and tls.key to be set`,
    },
    {
      why: "line_records is for ODMR listeners only",
      text: `smtp: {listen: [{address: "0.0.0.0:25", line_records: true}]}`,
      want:
        `Cannot load config "/etc/odmr.yaml": smtp.listen[0].line_records is not a known key (known here: address, tls)`,
    },
    {
      why: "a bad enum",
      text: "log: {level: verbose}",
      want:
        `Cannot load config "/etc/odmr.yaml": log.level must be one of debug, info, warn, error: current value is "verbose"`,
    },
    {
      why: "a misspelt key inside a domain entry",
      text: "domains: {example.org: {max_agee: 7d}}",
      want:
        `Cannot load config "/etc/odmr.yaml": domains.example.org.max_agee is not a known key: did you mean "domains.example.org.max_age"?`,
    },
    {
      why: "a misspelt quota key",
      text: "queue: {quota: {mesages: 5}}",
      want:
        `Cannot load config "/etc/odmr.yaml": queue.quota.mesages is not a known key: did you mean "queue.quota.messages"?`,
    },
    {
      why: "a quota with no limit in it",
      text: "domains: {example.org: {quota: {}}}",
      want:
        `Cannot load config "/etc/odmr.yaml": domains.example.org.quota must set bytes, messages or both`,
    },
    {
      why: "a bad quota size",
      text: "domains: {example.org: {quota: {bytes: plenty}}}",
      want:
        `Cannot load config "/etc/odmr.yaml": domains.example.org.quota.bytes must be a size in bytes or such as 512KB or 50MB: current value is "plenty"`,
    },
    {
      why: "a message quota of 0 (the limit below N=1)",
      text: "queue: {quota: {messages: 0}}",
      want:
        `Cannot load config "/etc/odmr.yaml": queue.quota.messages must be an integer 1-9007199254740991: current value is 0`,
    },
    {
      why: "a domain entry's max_age that is not a duration",
      text: "domains: {example.org: {max_age: forever}}",
      want:
        `Cannot load config "/etc/odmr.yaml": domains.example.org.max_age must be a duration such as 30s, 5m, 2h or 30d: current value is "forever"`,
    },
    {
      why: "a domain key that is not a domain",
      text: `domains: {"bad domain": {max_age: 1d}}`,
      want:
        `Cannot load config "/etc/odmr.yaml": domains.bad domain must be a domain name: current value is "bad domain"`,
    },
    {
      why: "the same domain twice, spelt differently",
      text: "domains: {example.org: {}, EXAMPLE.org: {}}",
      want:
        `Cannot load config "/etc/odmr.yaml": domains.EXAMPLE.org names the same domain as another entry: "example.org"`,
    },
    {
      why: "domains as a list",
      text: "domains: [example.org]",
      want:
        `Cannot load config "/etc/odmr.yaml": domains must be a mapping of domain names: current value is a list`,
    },
    {
      why: "a section that is not a mapping",
      text: "smtp: 3",
      want: `Cannot load config "/etc/odmr.yaml": smtp must be a mapping: current value is 3`,
    },
    {
      why: "tls without a key",
      text: "tls: {cert: /c.pem}",
      want: `Cannot load config "/etc/odmr.yaml": tls.key is required when tls is set`,
    },
    {
      why: "fetch without a server",
      text: "fetch: {user: a, password_file: /p}",
      want: `Cannot load config "/etc/odmr.yaml": fetch.server is required when fetch is set`,
    },
    {
      why: "fetch without password_file nor client_cert (#16)",
      text: "fetch: {server: r, user: a}",
      want:
        `Cannot load config "/etc/odmr.yaml": fetch.password_file is required when fetch is set (or fetch.client_cert and fetch.client_key, for AUTH EXTERNAL)`,
    },
    {
      why: "fetch.client_cert without client_key (#16)",
      text: "fetch: {server: r, user: a, client_cert: /c.pem}",
      want:
        `Cannot load config "/etc/odmr.yaml": fetch.client_key is required with fetch.client_cert/client_key (both or neither)`,
    },
    {
      why: "a bad deliver_to",
      text: "fetch: {server: r, user: a, password_file: /p, deliver_to: ftp://x}",
      want:
        `Cannot load config "/etc/odmr.yaml": fetch.deliver_to must be smtp://HOST:PORT, lmtp://HOST:PORT, lmtp+unix:/PATH or maildir:/PATH: current value is "ftp://x"`,
    },
    {
      why: "a top level that is a list",
      text: "- a",
      want: `Cannot load config "/etc/odmr.yaml": must be a YAML mapping at the top level: a list`,
    },
  ];
  for (const row of rows) {
    await t.step(row.why, () => {
      const err = errorOf(row.text);
      assertEquals(err.message, row.want);
      assertEquals(err.file, "/etc/odmr.yaml");
    });
  }
});

Deno.test("parseConfig() reports YAML syntax errors with the line", () => {
  const err = errorOf("smtp:\n  listen: [\n");
  assert(err.message.startsWith(`Cannot load config "/etc/odmr.yaml": is not valid YAML at line`));
  throws(() => parse("a: 1\na: 2\n"), ConfigError);
});

Deno.test("loadConfig() discovery: --config, then ODMR_RELAY_CONFIG, then ./config.yaml, then defaults", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const opts = { cwd: dir, systemHostname: () => "h" };
    assertEquals((await loadConfig(opts)).source, undefined);
    assertEquals((await loadConfig(opts)).dataDir, `${dir}/data`);

    await Deno.writeTextFile(`${dir}/config.yaml`, "hostname: local.example\n");
    assertEquals((await loadConfig(opts)).hostname, "local.example");

    await Deno.writeTextFile(`${dir}/env.yaml`, "hostname: env.example\n");
    const env = { ODMR_RELAY_CONFIG: "env.yaml" };
    assertEquals((await loadConfig({ ...opts, env })).hostname, "env.example");

    await Deno.writeTextFile(`${dir}/flag.yaml`, "hostname: flag.example\n");
    const c = await loadConfig({ ...opts, env, path: "flag.yaml" });
    assertEquals(c.hostname, "flag.example");
    assertEquals(c.source, `${dir}/flag.yaml`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("loadConfig() names a missing file and missing referenced files", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await rejectsWith(
      () => loadConfig({ cwd: dir, path: "nope.yaml" }),
      ConfigError,
      `Cannot load config "${dir}/nope.yaml": file not found`,
    );
    await rejectsWith(
      () => loadConfig({ cwd: dir, env: { ODMR_RELAY_CONFIG: `${dir}/gone.yaml` } }),
      ConfigError,
      "file not found",
    );
    await Deno.writeTextFile(`${dir}/c.yaml`, "hostname: h\ntls: {cert: c.pem, key: k.pem}\n");
    await rejectsWith(
      () => loadConfig({ cwd: dir, path: "c.yaml" }),
      ConfigError,
      `Cannot load config "${dir}/c.yaml": tls.cert names a file that does not exist: "${dir}/c.pem"`,
    );
    const c = await loadConfig({ cwd: dir, path: "c.yaml", checkFiles: false });
    assertEquals(c.tls?.key, `${dir}/k.pem`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("config.example.yaml loads and sets every key", async () => {
  const text = await Deno.readTextFile(new URL("../../config.example.yaml", import.meta.url));
  const c = parseConfig(text, { ...CONFIG_BASE, source: "config.example.yaml" });
  assert(c.tls !== undefined && c.metrics !== undefined && c.fetch !== undefined);
});

/** Asserts that `fn` rejects with a ConfigError whose message includes `text`. */
async function rejectsWith(
  fn: () => Promise<unknown>,
  cls: typeof ConfigError,
  text: string,
): Promise<void> {
  await rejects(fn, (err: unknown) => err instanceof cls && err.message.includes(text));
}

Deno.test("parseConfig() reads queue.quota and per-domain max_age and quota over the defaults", () => {
  const c = parse(`
queue:
  max_age: 10d
  quota: {bytes: 1GB, messages: 10000}
domains:
  Example.ORG: {max_age: 7d, quota: {messages: 5}}
  b\u00fccher.test: {quota: {bytes: 512KB}}
  plain.test: {}
`);
  assertEquals(c.queue, {
    maxAgeMs: 10 * 86_400_000,
    quota: { bytes: 1024 ** 3, messages: 10_000 },
    backend: "sqlite",
    postgres: undefined,
    leaseMs: 300_000,
    spaceReserveBytes: 8 * 1024 * 1024,
  });
  assertEquals(
    c.domains,
    new Map([
      // A domain's quota replaces queue.quota as a whole: a limit left out is no limit.
      ["example.org", { maxAgeMs: 7 * 86_400_000, quota: { bytes: undefined, messages: 5 } }],
      ["xn--bcher-kva.test", {
        maxAgeMs: 10 * 86_400_000,
        quota: { bytes: 512 * 1024, messages: undefined },
      }],
      ["plain.test", {
        maxAgeMs: 10 * 86_400_000,
        quota: { bytes: 1024 ** 3, messages: 10_000 },
      }],
    ]),
  );
});

Deno.test("parseConfig() reads queue.backend and queue.postgres; the password never in the URL", async (t) => {
  await t.step("postgres with url and password_file", () => {
    const c = parse(`
queue:
  backend: postgres
  postgres:
    url: postgres://odmr@db.test:5432/odmr?sslmode=require
    password_file: /etc/odmr/pg-password
`);
    assertEquals(c.queue.backend, "postgres");
    assertEquals(c.queue.postgres, {
      url: "postgres://odmr@db.test:5432/odmr?sslmode=require",
      passwordFile: "/etc/odmr/pg-password",
      poolSize: 8,
    });
  });
  await t.step("pool_size sets serve's main pool", () => {
    const c = parse(
      `queue: {backend: postgres, postgres: {url: 'postgres://odmr@db.test/odmr', pool_size: 20}}`,
    );
    assertEquals(c.queue.postgres?.poolSize, 20);
  });
  for (
    const row of [
      {
        why: "postgres without its section",
        yaml: "queue: {backend: postgres}",
        want: "queue.postgres must be set when queue.backend is postgres",
      },
      {
        why: "a password in the URL",
        yaml: "queue: {backend: postgres, postgres: {url: 'postgres://odmr:secret@db.test/odmr'}}",
        want: "queue.postgres.url must not hold a password: put it in queue.postgres.password_file",
      },
      {
        why: "another scheme",
        yaml: "queue: {postgres: {url: 'mysql://u:secret@db.test/odmr'}}",
        want: "queue.postgres.url must be a URL like postgres://USER@HOST:PORT/DB",
      },
      {
        why: "an unknown backend",
        yaml: "queue: {backend: mysql}",
        want: "queue.backend must be one of sqlite, postgres",
      },
      {
        why: "a pool of no connection",
        yaml: "queue: {postgres: {url: 'postgres://odmr@db.test/odmr', pool_size: 0}}",
        want: "queue.postgres.pool_size must be an integer 1-100: current value is 0",
      },
      {
        why: "a pool over the limit",
        yaml: "queue: {postgres: {url: 'postgres://odmr@db.test/odmr', pool_size: 101}}",
        want: "queue.postgres.pool_size must be an integer 1-100: current value is 101",
      },
    ]
  ) {
    await t.step(row.why, () => {
      let message = "";
      try {
        parse(row.yaml);
      } catch (err) {
        message = err instanceof Error ? err.message : String(err);
      }
      assertEquals(message.includes(row.want), true, message);
      assertEquals(message.includes("secret"), false, "the password is not echoed");
    });
  }
});

Deno.test("smtp.max_line_length takes 78 and 998, the bounds (N), and refuses N±1 (#10)", () => {
  assertEquals(parse("smtp: {max_line_length: 998}").smtp.maxLineLength, 998);
  assertEquals(parse("smtp: {max_line_length: 78}").smtp.maxLineLength, 78);
});

Deno.test("fetch.client_cert and client_key make password_file optional (#16)", () => {
  const f = parse("fetch: {server: r, user: a, client_cert: pi.pem, client_key: pi.key}").fetch;
  assertEquals(f?.passwordFile, undefined);
  assertEquals(f?.clientCert, "/etc/pi.pem");
  assertEquals(f?.clientKey, "/etc/pi.key");
});
