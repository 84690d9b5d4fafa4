// TLS drain benchmark (issue 4): the cost of writing one line per TLS record in the reversed
// phase (`line_records`, which fetchmail over implicit TLS needs). The same N × 4 KB drained
// by `fetch --once` over plain TCP, STARTTLS and implicit TLS with line_records on and off,
// and by fetchmail with `ssl` over implicit TLS. A throwaway self-signed certificate for
// 127.0.0.1 is made with openssl in the temp dir.

import { BENCH_DOMAIN, type BenchContext } from "./ingest.ts";
import { type DrainResult, drainWithFetch, fillServe, rateCell, secondsCell } from "./drain.ts";
import { drainWithFetchmail } from "./fetch.ts";
import { hasExecutable, runCommand } from "./_proc.ts";
import { Serve } from "./_serve.ts";
import { fmtRatio, type Table } from "./_table.ts";

const OPENSSL = "/usr/bin/openssl";
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
    label: "fetch, STARTTLS (line_records default: on)",
    listen: `"127.0.0.1:0"`,
    customer: "fetch",
    mode: "starttls",
    n: N_FETCH,
  },
  {
    label: "fetch, STARTTLS, line_records: false",
    listen: `{ address: "127.0.0.1:0", line_records: false }`,
    customer: "fetch",
    mode: "starttls",
    n: N_FETCH,
  },
  {
    label: "fetch, implicit TLS (line_records default: on)",
    listen: `{ address: "127.0.0.1:0", tls: implicit }`,
    customer: "fetch",
    mode: "implicit",
    n: N_FETCH,
  },
  {
    label: "fetch, implicit TLS, line_records: false",
    listen: `{ address: "127.0.0.1:0", tls: implicit, line_records: false }`,
    customer: "fetch",
    mode: "implicit",
    n: N_FETCH,
  },
  {
    label: "fetchmail ssl, implicit TLS (line_records on)",
    listen: `{ address: "127.0.0.1:0", tls: implicit }`,
    customer: "fetchmail",
    mode: "implicit",
    n: N_FETCHMAIL,
  },
];

async function makeCert(dir: string): Promise<{ cert: string; key: string }> {
  const cert = `${dir}/cert.pem`;
  const key = `${dir}/key.pem`;
  const r = await runCommand(OPENSSL, [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-keyout",
    key,
    "-out",
    cert,
    "-days",
    "1",
    "-subj",
    "/CN=localhost",
    "-addext",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
  ], 60_000);
  if (r.code !== 0) throw new Error(`openssl req exited ${r.code}: ${r.output}`);
  return { cert, key };
}

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
    await fillServe(serve, n);
    const r = v.customer === "fetch"
      ? await drainWithFetch(ctx, serve, n, { mode: v.mode, ca: pem.cert, host: "localhost" })
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
  if (!(await hasExecutable(OPENSSL))) {
    rows.push(["all", "", "", `n/a (${OPENSSL} not installed)`, ""]);
  } else {
    const pem = await makeCert(ctx.dir);
    let plain: number | undefined;
    for (const [i, v] of VARIANTS.entries()) {
      const r = await runVariant(ctx, v, i, pem);
      if (i === 0 && r.ok) plain = r.msgPerSec;
      rows.push([
        v.label,
        String(Math.max(1, Math.round(v.n / ctx.scale))),
        secondsCell(r),
        rateCell(r),
        fmtRatio(r.ok ? r.msgPerSec : undefined, plain),
      ]);
    }
  }
  return [{
    title: "Drain over TLS: cost of one line per TLS record (4 KB messages → smtp-sink)",
    headers: ["customer and listener", "messages", "seconds", "msg/s", "vs plain TCP"],
    rows,
    notes: [
      "fresh serve per row (self-signed cert for 127.0.0.1, fetch.ca pointing to it); queue " +
      "filled by smtp-source (untimed); wall clock of the customer process",
      "line_records: the provider writes each line of the reversed phase in its own TLS " +
      "record; default on, needed by fetchmail over implicit TLS (DESIGN.md, Peers)",
      "fetchmail: `ssl no sslcertck` in the rc (throwaway cert)",
      "fetch connects to `localhost:PORT` (the cert names DNS:localhost and IP:127.0.0.1; " +
      "`server: 127.0.0.1:PORT` works too since the IP-as-server-name fix in src/net/conn.ts)",
    ],
  }];
}
