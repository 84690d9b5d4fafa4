import assert from "node:assert/strict";
import YAML from "yaml";
import { renderEffectiveConfig } from "../../src/cli/check_config.ts";
import { ConfigError } from "../../src/config/load.ts";
import { parseConfig } from "../../src/config/parse.ts";
import type { Config } from "../../src/config/types.ts";

const BASE = { source: "/etc/odmr.yaml", baseDir: "/etc", systemHostname: () => "box.local" };

function parse(text: string): Config {
  return parseConfig(text, BASE);
}

/** Renders, then loads the rendering again (as the file it claims to be). */
function roundTrip(config: Config): Config {
  return parseConfig(renderEffectiveConfig(config), BASE);
}

/** Every key path of a YAML document (lists indexed), leaves only. */
function keyPaths(value: unknown, prefix = ""): string[] {
  if (Array.isArray(value)) return value.flatMap((v, i) => keyPaths(v, `${prefix}[${i}]`));
  if (typeof value === "object" && value !== null && Object.keys(value).length > 0) {
    return Object.entries(value).flatMap(([k, v]) =>
      keyPaths(v, prefix === "" ? k : `${prefix}.${k}`)
    );
  }
  return [prefix];
}

Deno.test("check-config shows every setting of the embedded defaults, line_records included (#11)", () => {
  const shown = YAML.parse(renderEffectiveConfig(parse("")));
  assert.deepEqual(keyPaths(shown).sort(), [
    "data_dir",
    "domains",
    "fetch",
    "hostname",
    "log.format",
    "log.level",
    "metrics",
    "odmr.auth_timeout",
    "odmr.drain_timeout",
    "odmr.listen[0].address",
    "odmr.listen[0].line_records",
    "odmr.listen[0].tls",
    "odmr.require_tls",
    "outbound.allow_private_mx",
    "outbound.concurrency",
    "outbound.delay_notice",
    "outbound.helo",
    "outbound.max_age",
    "outbound.resolver",
    "outbound.retry[0]",
    "outbound.retry[1]",
    "outbound.retry[2]",
    "outbound.retry[3]",
    "outbound.retry[4]",
    "outbound.retry[5]",
    "outbound.retry[6]",
    "outbound.tls",
    "queue.backend",
    "queue.lease_time",
    "queue.max_age",
    "queue.postgres",
    "queue.quota",
    "queue.space_reserve",
    "smtp.listen[0]",
    "smtp.max_connections",
    "smtp.max_connections_per_ip",
    "smtp.max_line_length",
    "smtp.max_message_size",
    "smtp.max_recipients",
    "smtp.timeout",
    "submission",
    "tls",
  ]);
  assert.equal(shown.odmr.listen[0].line_records, "auto");
  assert.equal(shown.queue.quota, null);
  assert.equal(shown.tls, null);
  assert.equal(shown.metrics, null);
  assert.equal(shown.fetch, null);
  assert.equal(shown.submission, null);
  assert.equal(shown.outbound.resolver, null);
  assert.deepEqual(shown.domains, {});
});

Deno.test("check-config output loads back to the same settings (defaults and config.example.yaml)", async () => {
  const example = await Deno.readTextFile(new URL("../../config.example.yaml", import.meta.url));
  for (
    const text of [
      "",
      example,
      // The optional parts the example leaves out or sets otherwise.
      "odmr: {listen: [{address: '[::]:366', line_records: false}, '0.0.0.0:366']}\n" +
      "queue: {quota: {messages: 5}}\ndomains: {b.example: {max_age: 1d}}\n" +
      "fetch: {server: relay.example.net, user: u, password_file: pw, deliver_to: 'maildir:m'}\n",
      "fetch: {server: r.example, user: u, client_cert: pi.pem, client_key: pi.key}\n",
    ]
  ) {
    const config = parse(text);
    const again = roundTrip(config);
    assert.deepEqual(again, config, renderEffectiveConfig(config));
    // Stable: rendering the loaded rendering gives the same text.
    assert.equal(renderEffectiveConfig(again), renderEffectiveConfig(config));
  }
});

Deno.test("check-config shows a fetch section with its defaults (ca: null, every domain)", () => {
  const shown = YAML.parse(
    renderEffectiveConfig(parse("fetch: {server: relay.example.net, user: u, password_file: pw}")),
  );
  assert.deepEqual(shown.fetch, {
    server: "relay.example.net:366",
    tls: "starttls",
    ca: null,
    ca_only: false,
    tls_server_name: null,
    user: "u",
    password_file: "/etc/pw",
    client_cert: null,
    client_key: null,
    domains: [],
    deliver_to: "smtp://127.0.0.1:25",
    interval: "5m",
  });
});

Deno.test("odmr.listen line_records takes true, false or auto (auto: the same as absent)", () => {
  const listen = (v: string) =>
    parse(`odmr: {listen: [{address: "0.0.0.0:366", line_records: ${v}}]}`)
      .odmr.listen[0];
  assert.deepEqual(listen("auto"), { host: "0.0.0.0", port: 366, tls: "none" });
  assert.deepEqual(listen("true"), { host: "0.0.0.0", port: 366, tls: "none", lineRecords: true });
  assert.deepEqual(listen("false"), {
    host: "0.0.0.0",
    port: 366,
    tls: "none",
    lineRecords: false,
  });
  assert.throws(
    () => listen("sometimes"),
    (err) =>
      err instanceof ConfigError &&
      err.message ===
        'Cannot load config "/etc/odmr.yaml": odmr.listen[0].line_records must be true, false or auto: current value is "sometimes"',
  );
});
