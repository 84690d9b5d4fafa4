/**
 * serve's JSON log as an outsider reads it: peers send control characters, DEL, invalid UTF-8
 * and line separators in HELO, addresses and an AUTH user name; then every line serve wrote is
 * given to Python's strict `json.loads`, one line at a time, and README.md's events ("Watching
 * it", "fail2ban", CONTRACT's `listening`) must be there with their documented keys.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { Buffer } from "node:buffer";
import { addUser, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import { cram, RawClient } from "../security/_raw.ts";

const PY_LINES = `
import sys, json
out = []
for n, line in enumerate(sys.stdin.buffer.read().split(b"\\n")):
    if line == b"":
        continue
    obj = json.loads(line.decode("utf-8", "strict"))
    if not isinstance(obj, dict):
        raise SystemExit("line %d is not an object: %r" % (n + 1, line))
    out.append(obj)
print(json.dumps(out))
`;

type Event = Record<string, unknown>;

/** An AUTH user name with a C1 line break (NEL) and what would forge a field in a naive log. */
const user2 = 'al"i\\ce\u0085\u00e9,remote=203.0.113.9';

async function pythonEvents(bytes: Uint8Array): Promise<Event[]> {
  const child = new Deno.Command("python3", {
    args: ["-c", PY_LINES],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(bytes);
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  assert(out.success, `json.loads refused a line:\n${dec.decode(out.stderr)}`);
  return JSON.parse(dec.decode(out.stdout)) as Event[];
}

function keysOf(events: Event[], name: string): string[][] {
  return events.filter((e) => e["event"] === name).map((e) => Object.keys(e).sort());
}

function hasKeys(events: Event[], name: string, want: readonly string[]): void {
  const all = keysOf(events, name);
  assert(all.length > 0, `no event=${name}`);
  for (const keys of all) {
    const missing = want.filter((k) => !keys.includes(k));
    assertEquals([name, missing], [name, []]);
  }
}

const bytes = (...parts: (string | number[])[]) =>
  Buffer.concat(
    parts.map((p) => typeof p === "string" ? Buffer.from(p, "latin1") : Buffer.from(p)),
  );

Deno.test("serve's JSON log lines survive hostile peers and carry README.md's keys", async () => {
  const server = await startServer({ config: { log: { format: "json" } } });
  try {
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    const mx = await RawClient.connect(server.smtp[0]!.port);
    try {
      match(await mx.reply(), /^220 /);
      // C0 controls, DEL, invalid UTF-8, U+2028 (as UTF-8) and a lone surrogate's bytes: the
      // receiver may refuse such a command (500 5.5.2); ASCII quotes, `=` and `\\` pass.
      await mx.write(
        bytes(
          "EHLO ev",
          [1, 0x1b, 0x7f, 0xff, 0xfe],
          "il",
          [0xe2, 0x80, 0xa8],
          [0xed, 0xa0, 0x80],
          ".test\r\n",
        ),
      );
      match(await mx.reply(), /^(250|500) /);
      match(await mx.command('EHLO ev"il\\=x.test client=203.0.113.9'), /^250 /);
      await mx.write(bytes("MAIL FROM:<s", [0xc3, 0x28], "@remote.test>\r\n"));
      if (!(await mx.reply()).startsWith("250 ")) {
        match(await mx.command('MAIL FROM:<"s \\"x=y"@remote.test>'), /^250 /);
      }
      await mx.write(bytes("RCPT TO:<x", [0xff, 0x1b], "@elsewhere.test>\r\n"));
      match(await mx.reply(), /^5\d\d /);
      match(await mx.command('RCPT TO:<"x\\" client=1"@elsewhere.test>'), /^5\d\d /);
      match(await mx.command("RCPT TO:<a@example.org>"), /^250 /);
      match(await mx.command("DATA"), /^354 /);
      match(await mx.command("Subject: t\r\n\r\nhello\r\n."), /^250 /);
      match(await mx.command("QUIT"), /^221 /);
    } finally {
      mx.close();
    }

    const odmr = await RawClient.connect(server.odmr[0]!.port);
    try {
      match(await odmr.reply(), /^220 /);
      match(await odmr.command("EHLO customer.test"), /^250 /);
      // CRAM-MD5 (PLAIN needs TLS): the user is everything before the response's last space.
      const user = bytes("al", [0xff, 0x0a, 0x1b], " remote=203.0.113.9", [0xe2, 0x80, 0xa8]);
      const response = Buffer.concat([user, bytes(" " + "0".repeat(32))]).toString("base64");
      match((await cram(odmr, "", "", response)).reply, /^(501|535) /);
      const named = Buffer.from(`${user2} ${"0".repeat(32)}`, "utf8").toString("base64");
      match((await cram(odmr, "", "", named)).reply, /^535 /);
      await odmr.command("QUIT");
    } finally {
      odmr.close();
    }

    const drained = await runScriptedCustomer({
      port: server.odmr[0]!.port,
      auth: { mechanism: "CRAM-MD5", user: "alice", password: "alice-pw" },
      atrn: "example.org",
    });
    match(drained.atrnReply ?? "", /^250 /);
    assertEquals(drained.messages.length, 1);
  } finally {
    assertEquals(await server.stop(), 0);
    await removeTestFiles(server);
  }
  const events = await pythonEvents(new TextEncoder().encode(server.logs()));
  for (const e of events) {
    for (const k of ["time", "level", "event"]) assertEquals([k, typeof e[k]], [k, "string"]);
    for (const k of Object.keys(e)) match(k, /^[a-z][a-z0-9_]*$/, `key ${k} is not snake_case`);
  }
  hasKeys(events, "listening", ["proto", "address", "tls"]);
  hasKeys(events, "queued", ["id", "client", "helo", "tls", "from", "to", "size"]);
  hasKeys(events, "refused", ["client", "helo", "from", "to"]);
  for (const r of events.filter((e) => e["event"] === "refused")) {
    assert("reply" in r || "reason" in r, JSON.stringify(r));
  }
  hasKeys(events, "auth_failed", ["remote", "user", "mechanism"]);
  hasKeys(events, "delivered", ["id", "to", "reply", "delay"]);
  // The hostile user name is one value: no forged remote= beside the real one.
  for (const e of events.filter((e) => e["event"] === "auth_failed")) {
    assertEquals(e["remote"], "127.0.0.1");
  }
  const users = events.filter((e) => e["event"] === "auth_failed").map((e) => e["user"]);
  assert(users.includes(user2), JSON.stringify(users));
});
