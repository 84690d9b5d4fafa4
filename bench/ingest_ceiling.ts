// Where the MX ingest ceiling is on this machine (issue 13): smtp-source into a private Postfix
// (mail held, as in bench/ingest.ts), our `serve`, and a null MX that only frames SMTP and
// discards every body (bench/_null_customer.ts, in this process), batches alternating between
// the three. A null MX far above Postfix means the sender is not what limits Postfix or us at this
// shape; its figure is what this sender can push into a server that stores nothing (smtp-sink is
// no ceiling: it is slow with large bodies). Per batch: msg/s, smtp-source's own CPU per message
// (user+sys through /usr/bin/time), the server's CPU per message where one process holds it
// (serve, the null MX; Postfix's smtpd and cleanup processes come and go), and how busy both
// cores were (all processes on the machine, others' load included). Not part of `deno task
// bench`; run it under the bench lock:
//   flock /tmp/odmr-bench.lock deno run -A bench/ingest_ceiling.ts 3 10 500 102400
// (rounds, sessions, messages per batch, payload bytes).

import { startNullMx } from "./_null_mx.ts";
import { PrivatePostfix } from "./_postfix.ts";
import { cpuMs, freePort, runCommand } from "./_proc.ts";
import { Serve } from "./_serve.ts";
import { SMTP_SOURCE, sourceArgs, type SourceShape } from "./_smtp_source.ts";

const DOMAIN = "bench.example";
const TIME = "/usr/bin/time";

interface Batch {
  readonly msgPerSec: number;
  /** smtp-source's user+sys CPU per message, µs (NaN without /usr/bin/time). */
  readonly sourceUs: number;
  /** The server's CPU per message, µs (NaN for Postfix). */
  readonly serverUs: number;
  /** Share of both cores busy during the batch (every process on the machine). */
  readonly busy: number;
}

interface Target {
  readonly name: string;
  readonly port: number;
  /** PID whose CPU is the server's, if one process holds it. */
  readonly pid: number | undefined;
}

const [roundsArg, sessionsArg, messagesArg, bytesArg] = Deno.args;
const rounds = Number(roundsArg ?? 3);
const shape: SourceShape = {
  sessions: Number(sessionsArg ?? 10),
  messages: Number(messagesArg ?? 500),
  bytes: Number(bytesArg ?? 102400),
};

/** Busy and total jiffies of all CPUs (/proc/stat). */
async function machineJiffies(): Promise<{ busy: number; total: number }> {
  const first = (await Deno.readTextFile("/proc/stat")).split("\n")[0] ?? "";
  const f = first.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - (f[3] ?? 0) - (f[4] ?? 0), total };
}

async function hasTime(): Promise<boolean> {
  try {
    return (await Deno.stat(TIME)).isFile;
  } catch {
    return false;
  }
}

async function batch(t: Target, s: SourceShape, timed: boolean): Promise<Batch> {
  const args = sourceArgs(t.port, s, `rcpt@${DOMAIN}`);
  const cpu0 = t.pid === undefined ? 0 : await cpuMs(t.pid);
  const m0 = await machineJiffies();
  const r = timed
    ? await runCommand(TIME, ["-f", "odmr-cpu %U %S", SMTP_SOURCE, ...args], 600_000)
    : await runCommand(SMTP_SOURCE, args, 600_000);
  const m1 = await machineJiffies();
  const cpu1 = t.pid === undefined ? 0 : await cpuMs(t.pid);
  if (r.code !== 0) throw new Error(`smtp-source into ${t.name} exited ${r.code}`);
  const times = /odmr-cpu ([\d.]+) ([\d.]+)/.exec(r.output);
  return {
    msgPerSec: s.messages / (r.ms / 1000),
    sourceUs: times === null ? NaN : (Number(times[1]) + Number(times[2])) * 1e6 / s.messages,
    serverUs: t.pid === undefined ? NaN : (cpu1 - cpu0) * 1000 / s.messages,
    busy: (m1.busy - m0.busy) / Math.max(1, m1.total - m0.total),
  };
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
}

const dir = await Deno.makeTempDir({ prefix: "odmr-bench-ceiling-" });
const timed = await hasTime();
const nullMx = startNullMx();
let postfix: PrivatePostfix | undefined;
let serve: Serve | undefined;
const batches = new Map<string, Batch[]>();
let targets: Target[] = [];
try {
  postfix = await PrivatePostfix.start({
    dir,
    relayPort: freePort(),
    domain: DOMAIN,
  });
  serve = await Serve.start({ dir, domain: DOMAIN });
  targets = [
    { name: "Postfix", port: postfix.smtpPort, pid: undefined },
    { name: "ours", port: serve.smtpPort, pid: serve.pid },
    { name: "null MX", port: nullMx.port, pid: Deno.pid },
  ];
  // Warm-up: the JIT of serve and of the null MX, Postfix's first processes.
  for (const t of targets) await batch(t, { ...shape, messages: 100 }, false);
  for (let round = 0; round < rounds; round++) {
    for (const t of round % 2 === 0 ? targets : [...targets].reverse()) {
      const list = batches.get(t.name) ?? [];
      list.push(await batch(t, shape, timed));
      batches.set(t.name, list);
    }
  }
} finally {
  nullMx.close();
  await serve?.stop();
  await postfix?.stop();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

const postfixRate = median((batches.get("Postfix") ?? []).map((b) => b.msgPerSec));
const fmt = (x: number) => Number.isNaN(x) ? "n/a" : x.toFixed(0);
for (const t of targets) {
  const b = batches.get(t.name) ?? [];
  const rate = median(b.map((x) => x.msgPerSec));
  // deno-lint-ignore no-console -- a bench prints its figures
  console.log(
    `${t.name} s${shape.sessions} x ${shape.bytes} B: msg/s ${fmt(rate)} ` +
      `(${(rate / postfixRate).toFixed(2)}x Postfix) [${
        b.map((x) => fmt(x.msgPerSec)).join(" ")
      }]; ` +
      `smtp-source CPU µs/msg ${fmt(median(b.map((x) => x.sourceUs)))}; ` +
      `server CPU µs/msg ${fmt(median(b.map((x) => x.serverUs)))}; ` +
      `both cores busy ${(median(b.map((x) => x.busy)) * 100).toFixed(0)}%`,
  );
}
