import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { ConfigError } from "../../src/config/load.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { CONFIG_BASE } from "./_parse.ts";
import { renderEffectiveConfig } from "../../src/cli/check_config.ts";

const parse = (text: string) => parseConfig(text, CONFIG_BASE);

function errorOf(text: string): string {
  try {
    parse(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  throw new Error("expected a ConfigError");
}

Deno.test("submission is off and outbound has its defaults when neither is configured", () => {
  const c = parse("hostname: mx.example.net\n");
  assertEquals(c.submission, undefined);
  assertEquals(c.outbound, {
    resolver: undefined,
    helo: "mx.example.net",
    tls: "opportunistic",
    maxAgeMs: 5 * 86_400_000,
    delayNoticeMs: 4 * 3_600_000,
    retryScheduleMs: [60_000, 300_000, 900_000, 1_800_000, 3_600_000, 7_200_000, 14_400_000],
    concurrency: 4,
    allowPrivateMx: false,
    ownAddresses: [],
  });
});

Deno.test("submission and outbound sections are read with their limits", () => {
  const c = parse(`
tls: {cert: /c.pem, key: /k.pem}
submission:
  listen: ["[::]:587", {address: "[::]:465", tls: implicit}]
  max_recipients: 50
  max_messages_per_hour: 10
  max_recipients_per_hour: 20
  auth_timeout: 30s
outbound:
  resolver: 127.0.0.1:5353
  helo: out.example.net
  tls: required
  max_age: 2d
  delay_notice: 1h
  retry: [1s, 2m]
  concurrency: 2
  allow_private_mx: true
  own_addresses: [203.0.113.25, "[2001:db8::25]"]
`);
  assertEquals(c.submission, {
    listen: [{ host: "::", port: 587, tls: "none" }, { host: "::", port: 465, tls: "implicit" }],
    maxRecipients: 50,
    maxMessagesPerHour: 10,
    maxRecipientsPerHour: 20,
    authTimeoutMs: 30_000,
  });
  assertEquals(c.outbound, {
    resolver: { host: "127.0.0.1", port: 5353 },
    helo: "out.example.net",
    tls: "required",
    maxAgeMs: 2 * 86_400_000,
    delayNoticeMs: 3_600_000,
    retryScheduleMs: [1000, 120_000],
    concurrency: 2,
    allowPrivateMx: true,
    ownAddresses: ["203.0.113.25", "2001:db8::25"],
  });
  // check-config shows both sections, and its output loads back to the same values.
  const again = parse(renderEffectiveConfig(c));
  assertEquals(again.submission, c.submission);
  assertEquals(again.outbound, c.outbound);
});

Deno.test("outbound.resolver without a port means port 53; an IPv6 resolver is accepted", () => {
  assertEquals(parse("outbound: {resolver: 10.0.0.1}").outbound.resolver, {
    host: "10.0.0.1",
    port: 53,
  });
  assertEquals(parse('outbound: {resolver: "[::1]:53"}').outbound.resolver, {
    host: "::1",
    port: 53,
  });
});

Deno.test("outbound.resolver refuses a host name, saying that it takes an IP address and why", () => {
  // CONTRACT: HOST:PORT "for Deno.resolveDns", whose name server is an IP address (ipAddr): a
  // name would need a name server to find it (resolv.conf's nameserver is an address too).
  for (const value of ["dns.example.net:53", "localhost", "localhost:5353"]) {
    assertEquals(
      errorOf(`outbound: {resolver: "${value}"}`),
      `Cannot load config "/etc/odmr.yaml": outbound.resolver must be the IP address of a name ` +
        `server with an optional port, such as 127.0.0.1:53 or [::1]:53, not a host name (finding ` +
        `its address would need a name server, as for resolv.conf's nameserver): current value ` +
        `is "${value}"`,
    );
  }
});

Deno.test("submission and outbound errors name the key path", async (t) => {
  const rows = [
    { text: "submission: {}", want: /submission\.listen is required/ },
    {
      text: 'submission: {listen: [{address: "127.0.0.1:465", tls: implicit}]}',
      want: /submission\.listen\[0\]\.tls is implicit, which needs tls\.cert/,
    },
    { text: "submission: {listen: [], max_recipients: 0}", want: /submission\.max_recipients/ },
    { text: "submission: {listen: [], max_rate: 1}", want: /submission\.max_rate is not a known/ },
    {
      text: "outbound: {resolver: dns.example.net:53}",
      want: /outbound\.resolver must be the IP address/,
    },
    {
      text: "outbound: {tls: always}",
      want: /outbound\.tls must be one of opportunistic, required/,
    },
    {
      text: "outbound: {max_age: 1h, delay_notice: 2h}",
      want: /outbound\.delay_notice must be shorter/,
    },
    { text: "outbound: {helo: 'bad name'}", want: /outbound\.helo must be a host name/ },
  ];
  for (const row of rows) {
    await t.step(row.text, () => match(errorOf(row.text), row.want));
  }
});

Deno.test("outbound.delay_notice at max_age minus 1 ms is accepted, at max_age refused", () => {
  assertEquals(
    parse("outbound: {max_age: 2h, delay_notice: 7199s}").outbound.delayNoticeMs,
    7_199_000,
  );
  match(errorOf("outbound: {max_age: 2h, delay_notice: 7200s}"), /must be shorter/);
});

Deno.test("outbound.retry takes 1 to 100 steps of at least 1s; concurrency 1 to 64", async (t) => {
  const steps = (n: number) => `[${Array(n).fill("1s").join(", ")}]`;
  await t.step("retry: 1 and 100 steps are accepted, 0 and 101 refused", () => {
    assertEquals(parse(`outbound: {retry: ${steps(1)}}`).outbound.retryScheduleMs, [1000]);
    assertEquals(parse(`outbound: {retry: ${steps(100)}}`).outbound.retryScheduleMs.length, 100);
    match(errorOf("outbound: {retry: []}"), /outbound\.retry must be a list of 1-100 durations/);
    match(errorOf(`outbound: {retry: ${steps(101)}}`), /outbound\.retry must be a list/);
    match(errorOf("outbound: {retry: 5m}"), /outbound\.retry must be a list/);
  });
  await t.step("retry: a step under one second, or not a duration, names its index", () => {
    match(errorOf("outbound: {retry: [1m, 500ms]}"), /outbound\.retry\[1\] must be at least 1s/);
    match(errorOf("outbound: {retry: [soon]}"), /outbound\.retry\[0\]/);
  });
  await t.step("concurrency: 1 and 64 accepted, 0 and 65 refused", () => {
    assertEquals(parse("outbound: {concurrency: 1}").outbound.concurrency, 1);
    assertEquals(parse("outbound: {concurrency: 64}").outbound.concurrency, 64);
    match(errorOf("outbound: {concurrency: 0}"), /outbound\.concurrency/);
    match(errorOf("outbound: {concurrency: 65}"), /outbound\.concurrency/);
  });
  await t.step("allow_private_mx: a boolean", () => {
    assertEquals(parse("outbound: {allow_private_mx: false}").outbound.allowPrivateMx, false);
    match(errorOf("outbound: {allow_private_mx: yes}"), /outbound\.allow_private_mx/);
  });
});

Deno.test("outbound.own_addresses takes up to 64 IP addresses, never a name or a wildcard", async (t) => {
  const list = (n: number) =>
    `[${Array.from({ length: n }, (_, i) => `198.51.100.${i}`).join(", ")}]`;
  await t.step("absent or null: none; 64 accepted, 65 refused", () => {
    assertEquals(parse("outbound: {}").outbound.ownAddresses, []);
    assertEquals(parse("outbound: {own_addresses: null}").outbound.ownAddresses, []);
    assertEquals(parse(`outbound: {own_addresses: ${list(64)}}`).outbound.ownAddresses.length, 64);
    match(
      errorOf(`outbound: {own_addresses: ${list(65)}}`),
      /outbound\.own_addresses must be a list of at most 64 IP addresses/,
    );
    match(errorOf("outbound: {own_addresses: 203.0.113.25}"), /must be a list/);
  });
  await t.step("a host name, a wildcard or a non-string names its index", () => {
    for (const bad of ["mx.example.net", "0.0.0.0", "'::'", "'[::]'", "25", "203.0.113.25:25"]) {
      match(
        errorOf(`outbound: {own_addresses: [192.0.2.1, ${bad}]}`),
        /outbound\.own_addresses\[1\] must be an IP address of this relay/,
        bad,
      );
    }
  });
});
