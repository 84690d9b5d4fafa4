/**
 * E2E (#11): logs that trace a message after the MX. The provider logs one line per recipient
 * attempt (`delivered|deferred|failed id= to= reply= delay=`), `fetch` one line per message
 * and a summary; asserted by field. Under systemd (JOURNAL_STREAM set) every line carries its
 * syslog priority; `-v` and `-q` override log.level.
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import { writeFetchConfig } from "../_helpers/fetch_process.ts";
import {
  addUser,
  queueList,
  removeTestFiles,
  REPO_ROOT,
  startServer,
} from "../_helpers/server_process.ts";
import { eventsNamed, listOf, parseLogLine } from "../_helpers/log_lines.ts";
import { submitAccepted } from "../_helpers/smtp_submit.ts";
import { startCaptureServer } from "../_helpers/capture_smtp.ts";

const enc = new TextEncoder();

async function fetchOnce(
  configPath: string,
  flags: readonly string[] = [],
  env: Record<string, string> = {},
): Promise<{ code: number; stderr: string }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${REPO_ROOT}main.ts`, "fetch", "--once", ...flags, "--config", configPath],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1", ...env },
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("provider and fetch log each recipient and each message by field (#11)", async () => {
  const server = await startServer({});
  const dir = await Deno.makeTempDir({ prefix: "odmr-trace-" });
  // The customer's MTA: carol's mailbox is full (450), dave does not exist (550).
  const capture = await startCaptureServer({
    rcptReply: (a) =>
      a.startsWith("carol@")
        ? "450 4.2.2 Mailbox full"
        : a.startsWith("dave@")
        ? "550 5.1.1 No such user"
        : undefined,
  });
  try {
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    await submitAccepted({
      port: server.smtp[0]!.port,
      from: "s@remote.test",
      to: ["bob@example.org", "carol@example.org", "dave@example.org"],
      body: enc.encode("Subject: t\r\n\r\nhi\r\n"),
    });
    const [id] = (await queueList(server.configPath) as { id: string }[]).map((m) => m.id);
    const config = await writeFetchConfig(dir, {
      server: `127.0.0.1:${server.odmr[0]!.port}`,
      "deliver_to": `smtp://127.0.0.1:${capture.port}`,
    });
    const run = await fetchOnce(config, [], { JOURNAL_STREAM: "8:12345" });
    // A local 4xx (carol) makes the poll a temporary failure (README.md "Exit codes": 5).
    assertEquals(run.code, 5, run.stderr);

    // The provider: one line per recipient attempt.
    const logs = server.logs();
    const byOutcome = (e: string) => eventsNamed(logs, e).filter((l) => l.id === id);
    const [bob] = byOutcome("delivered");
    const [carol] = byOutcome("deferred");
    const [dave] = byOutcome("failed");
    assert(bob && carol && dave, logs);
    assertEquals([bob.to, carol.to, dave.to], [
      "bob@example.org",
      "carol@example.org",
      "dave@example.org",
    ]);
    match(String(bob.reply), /^250 /);
    match(String(carol.reply), /^450 4\.2\.2 /);
    match(String(dave.reply), /^550 5\.1\.1 /);
    assertEquals([bob.level, carol.level, dave.level], ["info", "info", "warn"]);
    for (const e of [bob, carol, dave]) assert(Number(e.delay) >= 0 && Number(e.delay) < 60);

    // fetch: one line per message (every accepted recipient), a summary, all with <N> prefixes.
    const lines = run.stderr.split("\n").filter((l) => l !== "" && !l.startsWith("error:"));
    for (const l of lines) match(l, /^<[3-7]>\S+ (debug|info|warn|error) event=/);
    const info = lines.filter((l) => / info event=/.test(l));
    assert(info.every((l) => l.startsWith("<6>")), info.join("\n"));
    const delivered = eventsNamed(run.stderr, "delivered");
    assertEquals(delivered.length, 1, run.stderr);
    assertEquals(listOf(delivered[0]!, "to"), ["bob@example.org"]);
    const [done] = eventsNamed(run.stderr, "fetch_done");
    assert(done, run.stderr);
    assertEquals([done.messages, done.delivered, done.deferred, done.failed], ["1", "1", "1", "1"]);
    assert(lines.every((l) => parseLogLine(l) !== undefined), "every line parses");
  } finally {
    await capture.close();
    await server.stop();
    await removeTestFiles(server);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch -v logs debug events, -q only warnings and errors (#11)", async () => {
  const server = await startServer({});
  const dir = await Deno.makeTempDir({ prefix: "odmr-verbose-" });
  try {
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    // Nothing waiting: ATRN 453, exit 0, after info and debug events.
    const config = await writeFetchConfig(
      dir,
      { server: `127.0.0.1:${server.odmr[0]!.port}`, "deliver_to": `maildir:${dir}/Maildir` },
      { log: { level: "info" } },
    );
    const levels = async (flags: string[]) => {
      const r = await fetchOnce(config, flags);
      assertEquals(r.code, 0, r.stderr);
      return [
        ...new Set(
          r.stderr.split("\n").flatMap((l) => {
            const e = parseLogLine(l);
            return e ? [String(e.level)] : [];
          }),
        ),
      ].sort();
    };
    assertEquals(await levels([]), ["info"]);
    assertEquals(await levels(["-v"]), ["debug", "info"]);
    assertEquals(await levels(["--verbose"]), ["debug", "info"]);
    assertEquals(await levels(["-q"]), []);
    assertEquals(await levels(["--quiet"]), []);
    const both = await fetchOnce(config, ["-v", "-q"]);
    assertEquals(both.code, 2, both.stderr);
    match(both.stderr, /exclude each other/);
  } finally {
    await server.stop();
    await removeTestFiles(server);
    await Deno.remove(dir, { recursive: true });
  }
});
