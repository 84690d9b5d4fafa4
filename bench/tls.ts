// TLS drain benchmark (issues 4 and 13): the same N × 4 KB drained by `fetch --once` over
// plain TCP, STARTTLS and implicit TLS (and with line_records forced on: one line per TLS
// record, which fetchmail over implicit TLS needs), by fetchmail with `ssl` over implicit TLS,
// and by a private Postfix flushing the same N to smtp-sink. A throwaway self-signed
// certificate for 127.0.0.1 is made with openssl in the temp dir.

import { BENCH_DOMAIN, type BenchContext } from "./ingest.ts";
import {
  drainPostfix,
  type DrainResult,
  drainWithFetch,
  fillServe,
  rateCell,
  secondsCell,
  warmUpFetch,
} from "./drain.ts";
import { drainWithFetchmail } from "./fetch.ts";
import { hasTool } from "../tests/_helpers/tools.ts";
import { makeSelfSigned } from "../tests/_helpers/self_signed.ts";
import { Serve } from "./_serve.ts";
import { fmtRate, fmtRatio, naCell, type Table } from "./_table.ts";

const N_FETCH = 2000;
const N_FETCHMAIL = 300;

interface Variant {
  readonly label: string;
  readonly listen: string;
  readonly customer: "fetch" | "fetchmail";
  readonly mode: "none" | "implicit" | "starttls";
  readonly n: number;
}

const VARIANTS: readonly Variant[] = [
  {
    label: "fetch, plain TCP",
    listen: `"127.0.0.1:0"`,
    customer: "fetch",
    mode: "none",
    n: N_FETCH,
  },
  {
    label: "fetch, STARTTLS (line_records default: per session, off)",
    listen: `"127.0.0.1:0"`,
    customer: "fetch",
    mode: "starttls",
    n: N_FETCH,
  },
  {
    label: "fetch, STARTTLS, line_records: true (one line per record)",
    listen: `{ address: "127.0.0.1:0", line_records: true }`,
    customer: "fetch",
    mode: "starttls",
    n: N_FETCH,
  },
  {
    label: "fetch, implicit TLS (line_records default: per session, off)",
    listen: `{ address: "127.0.0.1:0", tls: implicit }`,
    customer: "fetch",
    mode: "implicit",
    n: N_FETCH,
  },
  {
    label: "fetchmail ssl, implicit TLS (line_records default: per session, on)",
    listen: `{ address: "127.0.0.1:0", tls: implicit }`,
    customer: "fetchmail",
    mode: "implicit",
    n: N_FETCHMAIL,
  },
];

async function runVariant(
  ctx: BenchContext,
  v: Variant,
  i: number,
  pem: { cert: string; key: string },
): Promise<DrainResult> {
  const n = Math.max(1, Math.round(v.n / ctx.scale));
  try {
    const serve = await Serve.start({
      dir: `${ctx.dir}`,
      name: `serve-${i}`,
      domain: BENCH_DOMAIN,
      tls: pem,
      odmrListen: v.listen,
    });
    ctx.defer(() => serve.stop());
    const tls = { mode: v.mode, ca: pem.cert, host: "localhost" };
    if (v.customer === "fetch") await warmUpFetch(ctx, serve, tls);
    await fillServe(serve, n);
    const r = v.customer === "fetch"
      ? await drainWithFetch(ctx, serve, n, tls)
      : await drainWithFetchmail(ctx, serve, n, true);
    await serve.stop();
    return r;
  } catch (e) {
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}

/** Runs the TLS drain benchmark. */
export async function tlsBench(ctx: BenchContext): Promise<Table[]> {
  const rows: string[][] = [];
  const nFetch = Math.max(1, Math.round(N_FETCH / ctx.scale));
  const postfix = await drainPostfix(ctx, nFetch);
  const postfixRate = postfix.ok ? postfix.msgPerSec : undefined;
  const results: DrainResult[] = [];
  if (!(await hasTool("openssl"))) {
    rows.push(["all", "", "", "n/a (openssl not installed)", "", ""]);
  } else {
    const pem = await makeSelfSigned(ctx.dir, "cert", { dnsName: "localhost", days: 1, rsa: true });
    for (const [i, v] of VARIANTS.entries()) {
      const r = await runVariant(ctx, v, i, pem);
      results.push(r);
      const plain = results[0]?.ok ? results[0].msgPerSec : undefined;
      const rate = r.ok ? r.msgPerSec : undefined;
      rows.push([
        v.label,
        String(Math.max(1, Math.round(v.n / ctx.scale))),
        secondsCell(r),
        rateCell(r),
        fmtRatio(rate, plain),
        fmtRatio(rate, postfixRate),
      ]);
    }
  }
  rows.push([
    "Postfix: postsuper -H + postqueue -f (plain SMTP)",
    String(nFetch),
    secondsCell(postfix),
    rateCell(postfix),
    "",
    "1.00×",
  ]);
  const vsPostfix = (r: DrainResult | undefined) =>
    r === undefined
      ? "n/a (not run)"
      : r.ok
      ? `${fmtRatio(r.msgPerSec, postfixRate)} (${fmtRate(r.msgPerSec)} vs ${
        postfix.ok ? fmtRate(postfix.msgPerSec) : "n/a"
      } msg/s, N=${nFetch})`
      : naCell(r.reason);
  ctx.summary.set("tlsDrain", vsPostfix(results[1]));
  ctx.summary.set("plainDrain", vsPostfix(results[0]));
  return [{
    title: "Drain over TLS: cost of one line per TLS record (4 KB messages → smtp-sink)",
    headers: ["customer and listener", "messages", "seconds", "msg/s", "vs plain", "vs Postfix"],
    rows,
    notes: [
      "fresh serve per row (self-signed cert for 127.0.0.1, fetch.ca pointing to it); queue " +
      "filled by smtp-source (untimed); wall clock of the customer process; each fetch row " +
      "follows one untimed `fetch --once` on the empty queue (Deno's code cache as a customer " +
      "polling from cron has it)",
      "line_records: the provider writes each line of the reversed phase in its own TLS " +
      "record, which fetchmail over implicit TLS needs; by default only a customer on implicit " +
      "TLS that authenticates with CRAM-MD5/PLAIN/LOGIN gets it (fetch uses SCRAM-SHA-256)",
      "Postfix: private instance, the same N held, then released and flushed to smtp-sink " +
      "(its default concurrency), timed until its queue is empty",
      "fetchmail: `ssl no sslcertck` in the rc (throwaway cert)",
      "fetch connects to `localhost:PORT` (the cert names DNS:localhost and IP:127.0.0.1; " +
      "`server: 127.0.0.1:PORT` works too since the IP-as-server-name fix in src/net/conn.ts)",
    ],
  }];
}
