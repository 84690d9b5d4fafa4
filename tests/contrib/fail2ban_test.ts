/**
 * contrib/fail2ban: the filter, run by the real fail2ban-regex over the log of a real `serve`
 * that saw AUTH failures, bans exactly the address that failed, never one a peer wrote into a
 * user name (#10, log injection), in text and JSON log formats and behind a journal prefix.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { createHmac } from "node:crypto";
import { Buffer } from "node:buffer";
import { toolTest } from "../_helpers/tools.ts";
import { addUser, removeTestFiles, REPO_ROOT, startServer } from "../_helpers/server_process.ts";
import { RawClient } from "../security/_raw.ts";
import { until } from "../_helpers/wait_until.ts";

const FILTER = `${REPO_ROOT}contrib/fail2ban/filter.d/odmr-relay.conf`;
/** Each attempt from its own loopback address (the relay delays repeated failures per IP). */
const attacker = (i: number) => `127.0.0.${20 + i}`;
/**
 * User names chosen by the attacker, each trying to get another address banned: CRAM-MD5
 * takes names without white space (as JavaScript sees it; Python's \s also takes \x1c and
 * NEL), SCRAM-SHA-256 takes spaces too.
 */
const FORGED: { mechanism: "CRAM-MD5" | "SCRAM-SHA-256"; user: string }[] = [
  { mechanism: "CRAM-MD5", user: "remote=203.0.113.7" },
  { mechanism: "CRAM-MD5", user: 'x"remote=203.0.113.8' },
  { mechanism: "CRAM-MD5", user: "x\x1cremote=203.0.113.9" },
  { mechanism: "CRAM-MD5", user: "x\u0085remote=203.0.113.10" },
  { mechanism: "SCRAM-SHA-256", user: "x remote=203.0.113.11" },
  { mechanism: "SCRAM-SHA-256", user: 'x" remote=203.0.113.12 y="' },
  { mechanism: "CRAM-MD5", user: "alice" },
];

/** fail2ban-regex over `text` (one log file): the address of every matched line. */
async function bannedAddresses(text: string): Promise<string[]> {
  const file = await Deno.makeTempFile({ prefix: "odmr-f2b-", suffix: ".log" });
  try {
    await Deno.writeTextFile(file, text);
    const out = await new Deno.Command("fail2ban-regex", {
      args: ["-o", "ip", file, FILTER],
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    assertEquals(out.code, 0, stdout + new TextDecoder().decode(out.stderr));
    return stdout.split("\n").map((l) => l.trim()).filter((l) => l !== "");
  } finally {
    await Deno.remove(file);
  }
}

/** One SCRAM-SHA-256 attempt as `user` with a made-up proof; returns the final reply. */
async function failScram(c: RawClient, user: string): Promise<string> {
  const b64 = (t: string) => Buffer.from(t).toString("base64");
  // RFC 5802 §5.1: "," and "=" in a name are written =2C and =3D.
  const name = user.replaceAll("=", "=3D").replaceAll(",", "=2C");
  const first = await c.command(`AUTH SCRAM-SHA-256 ${b64(`n,,n=${name},r=abcdefgh`)}`);
  if (!first.startsWith("334 ")) return first;
  const serverFirst = Buffer.from(first.slice(4), "base64").toString("latin1");
  const nonce = /(?:^|,)r=([^,]*)/.exec(serverFirst)?.[1] ?? "";
  const proof = Buffer.alloc(32, 7).toString("base64");
  return await c.command(b64(`c=biws,r=${nonce},p=${proof}`));
}

/** One CRAM-MD5 attempt as `user` with a wrong password; returns the final reply. */
async function failCram(c: RawClient, user: string): Promise<string> {
  const ch = await c.command("AUTH CRAM-MD5");
  if (!ch.startsWith("334 ")) return ch;
  const digest = createHmac("md5", "wrong").update(Buffer.from(ch.slice(4), "base64")).digest(
    "hex",
  );
  return await c.command(Buffer.from(`${user} ${digest}`).toString("base64"));
}

for (const format of ["text", "json"] as const) {
  await toolTest(
    `fail2ban filter bans the failing address, not one forged in a user name (${format}, #10)`,
    ["fail2ban-regex"],
    async () => {
      const server = await startServer({ config: { log: { format } } });
      try {
        await addUser(server.configPath, "alice", ["example.org"]);
        const port = server.odmr[0]!.port; // startServer waited for the odmr listener
        // One connection per attempt: the relay cuts a session after a few failures.
        for (const [i, { mechanism, user }] of FORGED.entries()) {
          const c = await RawClient.connect(port, attacker(i));
          try {
            assert((await c.reply()).startsWith("220 "));
            assert((await c.command("EHLO attacker.test")).startsWith("250 "));
            const r = mechanism === "CRAM-MD5" ? await failCram(c, user) : await failScram(c, user);
            assert(/^535 /.test(r), r);
          } finally {
            c.close();
          }
        }
        // The 535 can reach us before its log line reaches server.logs() (a busy machine).
        const failuresIn = (text: string) =>
          text.split("\n").filter((l) => l.includes("auth_failed"));
        await until(
          "every auth_failed line",
          () => failuresIn(server.logs()).length >= FORGED.length,
          10_000,
        );
        // Lines a legitimate login writes must not count either.
        const logs = server.logs();
        const failures = failuresIn(logs);
        assertEquals(failures.length, FORGED.length, logs);
        if (format === "text") {
          // Even a naive "remote=" grep finds only the relay's own field.
          for (const line of failures) assertEquals(line.split("remote=").length, 2, line);
        }
        assertEquals(await bannedAddresses(logs), FORGED.map((_, i) => attacker(i)));
        // The same lines as journald hands them to fail2ban (backend = systemd).
        const journal = failures.map((l) => `vps odmr-relay[4242]: ${l}`).join("\n") + "\n";
        assertEquals(await bannedAddresses(journal), FORGED.map((_, i) => attacker(i)));
      } finally {
        assertEquals(await server.stop(), 0, server.logs());
        await removeTestFiles(server);
      }
    },
  );
}
