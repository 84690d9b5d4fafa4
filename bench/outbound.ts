// Outbound benchmark (issue 15): N × 4 KB submitted messages for other domains, delivered by
// serve's outbound worker to their MX — Postfix's smtp-sink on 127.0.0.25:25, found through a
// real DNS server (dnsmasq: MX → A) — beside a private Postfix delivering the same N to the
// same smtp-sink. Ours: once to one destination domain (one connection), once spread over
// several domains (outbound.concurrency of them at a time).

import { openDatabase } from "../src/queue/db.ts";
import { SqliteQueueStore } from "../src/queue/sqlite_store.ts";
import type { NewMessage, QueueStore } from "../src/queue/types.ts";
import { startDnsmasq } from "../tests/_helpers/dnsmasq.ts";
import type { BenchContext } from "./ingest.ts";
import { type DrainResult, drainTimeoutMs, failedDrain, rateCell, secondsCell } from "./drain.ts";
import { PrivatePostfix } from "./_postfix.ts";
import { sleep } from "./_proc.ts";
import { lastLine, odmrRelay, Serve } from "./_serve.ts";
import { SmtpSink } from "../tests/_helpers/smtp_sink.ts";
import { hasTool } from "../tests/_helpers/tools.ts";
import { runSource } from "./_smtp_source.ts";
import { fmtRatio, naCell, type Table } from "./_table.ts";

const N = 2000;
const KB = 1024;
/** Where the destinations' MX points: a loopback address of its own (tests use 127.0.0.2-6). */
const SINK_HOST = "127.0.0.25";
const SINK_PORT = 25;
/** Destination domains of the spread run (and of Postfix's). */
const SPREAD_DOMAINS = 10;
/** The worker's destinations at a time in the spread run (outbound.concurrency). */
const CONCURRENCY = 4;
/** The user who "submitted" the mail (the sender's domain is ours, as submission requires). */
const SENDER_DOMAIN = "sender.example";
/** DKIM key algorithms, as `dkim keygen --algorithm` names them. */
type Algorithm = "rsa" | "ed25519";
/** Messages of the untimed run that checks the signatures. */
const CHECK_N = 20;
/** Messages committed together while filling the store (one group COMMIT each). */
const FILL_BATCH = 500;

function destination(i: number): string {
  return `d${i}.dest.example`;
}

/** A 4 KB message: headers and lines of 76 characters, as a mail client writes them. */
function body(n: number): Uint8Array {
  const head = `From: <u@${SENDER_DOMAIN}>\r\nTo: <r${n}@dest.example>\r\n` +
    `Subject: outbound ${n}\r\nMessage-ID: <${n}.bench@${SENDER_DOMAIN}>\r\n\r\n`;
  let text = head;
  const line = "x".repeat(76) + "\r\n";
  while (text.length + line.length <= 4 * KB) text += line;
  return new TextEncoder().encode(text);
}

/** Runs the benchmark; one table. */
export async function outboundBench(ctx: BenchContext): Promise<Table[]> {
  const n = Math.max(SPREAD_DOMAINS, Math.round(N / ctx.scale));
  const notes: string[] = [];
  const why = await unavailable();
  let one: DrainResult;
  let spread: DrainResult;
  let postfix: DrainResult;
  let signed: DrainResult;
  let signedEd: DrainResult;
  if (why !== undefined) {
    const na: DrainResult = { ok: false, reason: why };
    [one, spread, signed, signedEd, postfix] = [na, na, na, na, na];
  } else {
    const domains = Array.from({ length: SPREAD_DOMAINS }, (_, i) => destination(i));
    await using dns = await startDnsmasq({
      mx: domains.map((d) => ({ name: d, host: "mx.sink.example", preference: 10 })),
      hosts: [{ name: "mx.sink.example", addresses: [SINK_HOST] }],
    });
    const sink = await SmtpSink.start({ host: SINK_HOST, port: SINK_PORT });
    ctx.defer(() => sink.stop());
    one = await deliverOurs(ctx, sink, dns.address, n, { domains: [destination(0)], name: "one" });
    spread = await deliverOurs(ctx, sink, dns.address, n, { domains, name: "spread" });
    signed = await deliverOurs(ctx, sink, dns.address, n, { domains, name: "rsa", dkim: "rsa" });
    signedEd = await deliverOurs(ctx, sink, dns.address, n, {
      domains,
      name: "ed25519",
      dkim: "ed25519",
    });
    postfix = await deliverPostfix(ctx, sink, n, domains);
    await sink.stop();
    if (signed.ok) {
      const bad = await signatureCheck(ctx, dns.address, domains, "rsa");
      if (bad !== undefined) signed = { ok: false, reason: bad };
    }
    if (signedEd.ok) {
      const bad = await signatureCheck(ctx, dns.address, domains, "ed25519");
      if (bad !== undefined) signedEd = { ok: false, reason: bad };
    }
  }
  const ratio = (r: DrainResult) =>
    fmtRatio(r.ok ? r.msgPerSec : undefined, postfix.ok ? postfix.msgPerSec : undefined);
  const sessions = (r: DrainResult) => r.ok ? String(r.sinkSessions ?? "?") : "";
  ctx.summary.set(
    "outbound",
    one.ok || spread.ok
      ? `${ratio(spread)} (${rateCell(spread)} vs ${rateCell(postfix)} msg/s, ` +
        `${SPREAD_DOMAINS} domains, N=${n}); one domain ${ratio(one)}, RSA-signed ${ratio(signed)}`
      : naCell(spread.ok ? "" : spread.reason),
  );
  return [{
    title: `Outbound (${n} × 4 KB submitted for other domains → smtp-sink at their MX)`,
    headers: ["delivered by", "sessions at smtp-sink", "seconds", "msg/s", "vs Postfix"],
    rows: [
      [
        "ours: serve's worker, 1 destination domain",
        sessions(one),
        secondsCell(one),
        rateCell(one),
        ratio(one),
      ],
      [
        `ours: serve's worker, ${SPREAD_DOMAINS} domains, outbound.concurrency ${CONCURRENCY}`,
        sessions(spread),
        secondsCell(spread),
        rateCell(spread),
        ratio(spread),
      ],
      [
        `ours: the same, DKIM-signed (RSA 2048)`,
        sessions(signed),
        secondsCell(signed),
        rateCell(signed),
        ratio(signed),
      ],
      [
        `ours: the same, DKIM-signed (Ed25519)`,
        sessions(signedEd),
        secondsCell(signedEd),
        rateCell(signedEd),
        ratio(signedEd),
      ],
      [
        `Postfix: ${SPREAD_DOMAINS} domains, postsuper -H + postqueue -f`,
        sessions(postfix),
        secondsCell(postfix),
        rateCell(postfix),
        "1.00×",
      ],
    ],
    notes: [
      ...notes,
      `DNS: dnsmasq on 127.0.0.1 answers MX d0…d${SPREAD_DOMAINS - 1}.dest.example → ` +
      `mx.sink.example → A ${SINK_HOST}; smtp-sink listens on ${SINK_HOST}:${SINK_PORT}`,
      "ours: the queue is filled through SqliteQueueStore (route mx, untimed) before serve " +
      "starts (outbound.resolver = dnsmasq); timed from serve's `ready` line until smtp-sink " +
      "has taken all N (MX lookups included, Deno start-up not)",
      "signed rows: `dkim keygen sender.example [--algorithm ed25519]` before serve starts; " +
      `afterwards an untimed check run of ${CHECK_N} messages in the same setup goes to an ` +
      "smtp-sink that keeps them (-D), and every one must carry the signature (else n/a)",
      `Postfix: transport_maps sends every domain to smtp:[${SINK_HOST}]:${SINK_PORT} (no DNS: ` +
      "Postfix uses the system resolver, not dnsmasq), one nexthop with Postfix's default " +
      "concurrency (up to 20 sessions); mail held on arrival by smtpd, timed from release " +
      "until its queue directory is empty",
    ],
  }];
}

async function unavailable(): Promise<string | undefined> {
  if (Deno.uid() !== 0) return `port ${SINK_PORT} on ${SINK_HOST} needs root`;
  if (!(await hasTool("smtp-sink"))) return "smtp-sink not installed";
  if (!(await hasTool("dnsmasq"))) return "dnsmasq not installed";
  return undefined;
}

/** Fills a fresh serve's store with n mx-route messages over `domains`, then times delivery. */
async function deliverOurs(
  ctx: BenchContext,
  sink: SmtpSink,
  resolver: string,
  n: number,
  opts: { domains: readonly string[]; name: string; dkim?: Algorithm },
): Promise<DrainResult> {
  const { domains, name } = opts;
  const before = { messages: sink.messages(), sessions: sink.sessions() };
  let serve: Serve | undefined;
  try {
    const dir = `${ctx.dir}/${name}`;
    await Deno.mkdir(`${dir}/serve/data`, { recursive: true, mode: 0o700 });
    const db = openDatabase(`${dir}/serve/data`);
    const store = new SqliteQueueStore(db, { removeOrphans: false });
    try {
      await fill(store, n, domains);
    } finally {
      await store.close();
    }
    if (opts.dkim !== undefined) await keygen(`${dir}/serve/data`, opts.dkim);
    serve = await Serve.start({
      dir,
      domain: SENDER_DOMAIN,
      // smtp-sink listens on loopback, which a deployment refuses (outbound.allow_private_mx).
      extraYaml: `outbound:\n  resolver: ${resolver}\n  concurrency: ${CONCURRENCY}\n` +
        "  allow_private_mx: true\n",
    });
    const started = serve;
    ctx.defer(() => started.stop());
    // Wall clock from serve's own `ready` line: the worker starts with the listeners.
    const t0 = serve.readyAtMs;
    if (t0 === undefined) throw new Error("serve logged no ready line");
    const deadline = Date.now() + drainTimeoutMs(n);
    while (sink.messages() - before.messages < n && Date.now() < deadline) await sleep(10);
    const seconds = (Date.now() - t0) / 1000;
    const got = sink.messages() - before.messages;
    if (got < n) {
      return { ok: false, reason: `smtp-sink got ${got} of ${n}: ${serve.tail().slice(-200)}` };
    }
    await serve.stop();
    return await delivered(sink, before.sessions, n, seconds);
  } catch (e) {
    return failedDrain(e);
  } finally {
    await serve?.stop();
  }
}

/**
 * Untimed: CHECK_N messages through a fresh serve with a key, into an smtp-sink that keeps
 * them; each must arrive signed. Returns what is wrong, or undefined.
 */
async function signatureCheck(
  ctx: BenchContext,
  resolver: string,
  domains: readonly string[],
  algorithm: Algorithm,
): Promise<string | undefined> {
  const dumpDir = `${ctx.dir}/dump-${algorithm}`;
  await Deno.mkdir(dumpDir, { mode: 0o777 });
  // smtp-sink writes as the postfix user.
  await Deno.chmod(dumpDir, 0o777);
  const keeper = await SmtpSink.start({ host: SINK_HOST, port: SINK_PORT }, {
    dumpFile: `${dumpDir}/all`,
  });
  ctx.defer(() => keeper.stop());
  try {
    const r = await deliverOurs(ctx, keeper, resolver, CHECK_N, {
      domains,
      name: `check-${algorithm}`,
      dkim: algorithm,
    });
    if (!r.ok) return `signature check: ${r.reason}`;
  } finally {
    await keeper.stop();
  }
  const dump = await Deno.readTextFile(`${dumpDir}/all`);
  const count = dump.match(new RegExp(`^DKIM-Signature: v=1; a=${algorithm}-sha256;`, "gm"))
    ?.length ?? 0;
  return count === CHECK_N ? undefined : `${count} of ${CHECK_N} checked messages arrived signed`;
}

/** `dkim keygen` (RSA 2048 or Ed25519) for the sender's domain in `dataDir`. */
async function keygen(dataDir: string, algorithm: Algorithm): Promise<void> {
  const configPath = `${dataDir}/../keygen.yaml`;
  await Deno.writeTextFile(configPath, `data_dir: ${dataDir}\n`);
  const r = await odmrRelay(
    ["dkim", "keygen", SENDER_DOMAIN, "--selector", "bench", "--algorithm", algorithm],
    configPath,
  );
  if (r.code !== 0) throw new Error(`dkim keygen exited ${r.code}: ${lastLine(r.output)}`);
}

/**
 * smtp-sink counts a session when it ends: once the sender has stopped, the count settles
 * (unchanged for 300 ms; at most 3 s).
 */
/** n delivered in `seconds`, with the sink's sessions since `sessionsBefore` once all closed. */
async function delivered(
  sink: SmtpSink,
  sessionsBefore: number,
  n: number,
  seconds: number,
): Promise<DrainResult> {
  const sinkSessions = await closedSessions(sink) - sessionsBefore;
  return { ok: true, seconds, msgPerSec: n / seconds, sinkSessions };
}

async function closedSessions(sink: SmtpSink): Promise<number> {
  const deadline = Date.now() + 3_000;
  let last = sink.sessions();
  let since = Date.now();
  while (Date.now() < deadline && Date.now() - since < 300) {
    await sleep(50);
    const now = sink.sessions();
    if (now !== last) {
      last = now;
      since = Date.now();
    }
  }
  return last;
}

async function fill(store: QueueStore, n: number, domains: readonly string[]): Promise<void> {
  for (let done = 0; done < n; done += FILL_BATCH) {
    const batch: Promise<void>[] = [];
    for (let i = done; i < Math.min(n, done + FILL_BATCH); i++) {
      const domain = domains[i % domains.length] ?? destination(0);
      const message: NewMessage = {
        mailFrom: `u@${SENDER_DOMAIN}`,
        params: {},
        recipients: [{ address: `r${i}@${domain}`, domain, route: "mx" }],
      };
      batch.push((async () => {
        const writer = await store.begin(message);
        await writer.write(body(i));
        await writer.commit();
      })());
    }
    await Promise.all(batch);
  }
}

/** The same n over the same domains through a private Postfix, held, released, timed. */
async function deliverPostfix(
  ctx: BenchContext,
  sink: SmtpSink,
  n: number,
  domains: readonly string[],
): Promise<DrainResult> {
  const why = await PrivatePostfix.unavailable();
  if (why !== undefined) return { ok: false, reason: why };
  const before = { messages: sink.messages(), sessions: sink.sessions() };
  let pf: PrivatePostfix | undefined;
  try {
    const [first, ...more] = domains;
    pf = await PrivatePostfix.start({
      dir: `${ctx.dir}/outbound-postfix`,
      relayHost: SINK_HOST,
      relayPort: SINK_PORT,
      domain: first ?? destination(0),
      moreDomains: more,
    });
    const started = pf;
    ctx.defer(() => started.stop());
    // smtp-source sends to one address per run: one run per domain, n in all.
    for (let i = 0; i < domains.length; i++) {
      const count = Math.floor(n / domains.length) + (i < n % domains.length ? 1 : 0);
      await runSource(pf.smtpPort, { sessions: 10, messages: count, bytes: 4 * KB }, {
        rcpt: `r@${domains[i]}`,
        timeoutMs: drainTimeoutMs(n),
      });
    }
    const seconds = await pf.timedRelease(n, drainTimeoutMs(n));
    if (seconds === undefined) {
      return { ok: false, reason: `queue not empty after ${drainTimeoutMs(n)} ms` };
    }
    if (!(await sink.waitMessages(before.messages + n, 5_000))) {
      return { ok: false, reason: `smtp-sink got ${sink.messages() - before.messages} of ${n}` };
    }
    await pf.stop();
    return await delivered(sink, before.sessions, n, seconds);
  } catch (e) {
    return failedDrain(e);
  } finally {
    await pf?.stop();
  }
}
