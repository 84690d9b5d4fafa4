/**
 * `check-config` prints every effective setting, defaults included, and its output is itself a
 * config that loads to the same settings (README "Configuration"): every key the loader knows
 * is shown when its section is on, and a setting that differs from its default survives the
 * round trip. `queue.space_reserve` was left out of the output, so a config with
 * `space_reserve: 0` printed one that loads to the 8MB default.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import YAML from "yaml";
import { renderEffectiveConfig } from "../../src/cli/check_config.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { knownKeys } from "../config/_known_keys.ts";

const BASE = { source: "/etc/odmr.yaml", baseDir: "/etc", systemHostname: () => "box.local" };

/** Every section on, every setting away from its default where the default is not "off". */
const EVERYTHING = `
hostname: mx.example.net
data_dir: /var/lib/odmr
log: {level: debug, format: json}
tls: {cert: cert.pem, key: key.pem}
smtp: {listen: ["127.0.0.1:25"], max_message_size: 10MB, max_recipients: 5, max_connections: 9,
  max_connections_per_ip: 3, timeout: 2m, max_line_length: 500}
odmr: {listen: ["127.0.0.1:366"], require_tls: true, auth_timeout: 30s}
queue: {max_age: 2d, quota: {bytes: 1MB, messages: 7}, backend: postgres, lease_time: 1m,
  space_reserve: 0, postgres: {url: "postgres://odmr@db.example:5432/odmr",
  password_file: pg-password, pool_size: 4}}
domains: {example.org: {max_age: 1d, quota: {messages: 3}}}
metrics: {listen: "127.0.0.1:9366"}
submission: {listen: ["127.0.0.1:587"], max_recipients: 6, max_messages_per_hour: 8,
  max_recipients_per_hour: 9, auth_timeout: 20s}
outbound: {resolver: "127.0.0.1:53", helo: out.example.net, tls: required, max_age: 2d,
  delay_notice: 1h, retry: [1m, 2m], concurrency: 2, allow_private_mx: true}
fetch: {server: "relay.example.net:366", tls: implicit, ca: ca.pem, ca_only: true,
  tls_server_name: relay.example, user: alice, password_file: pw, client_cert: c.pem,
  client_key: c.key, domains: [example.org], deliver_to: "maildir:/m", interval: 1m}
`;

/** Every key path of a YAML document, inner ones too, list indices left out. */
function allPaths(value: unknown, prefix = ""): string[] {
  if (Array.isArray(value)) return value.flatMap((v) => allPaths(v, prefix));
  if (typeof value !== "object" || value === null) return [];
  return Object.entries(value).flatMap(([k, v]) => {
    const path = prefix === "" ? k : `${prefix}.${k}`;
    return [path, ...allPaths(v, path)];
  });
}

Deno.test("check-config shows every key the loader knows, and each loads back as shown", () => {
  const config = parseConfig(EVERYTHING, BASE);
  const shown = new Set(allPaths(YAML.parse(renderEffectiveConfig(config))));
  assertEquals(knownKeys().filter((k) => !shown.has(k)), []);
  assertEquals(parseConfig(renderEffectiveConfig(config), BASE), config);
  for (const reserve of ["0", "1MB", "8MB"]) {
    const one = parseConfig(`queue: {space_reserve: ${reserve}}`, BASE);
    assertEquals(parseConfig(renderEffectiveConfig(one), BASE), one, `space_reserve ${reserve}`);
  }
});
