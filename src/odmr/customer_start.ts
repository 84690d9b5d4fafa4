/**
 * The first steps of one poll, which need none of the SMTP machinery: read the files it uses
 * (`fetch.password_file`, `fetch.client_cert`/`client_key`, `fetch.ca`) and, once they are
 * good, connect to the provider (with the TLS handshake for implicit TLS). `fetch --once` runs
 * them from src/cli/main.ts before it loads the rest of fetch's modules, so the provider's
 * greeting (and the round trips to a distant provider) come in during that loading; every other
 * poll starts the same way when it comes (`customer.ts`). Nothing goes to the network when a
 * file is unusable.
 */
import { readNamedTextFile } from "../named_file.ts";
import type { FetchConfig } from "../config/types.ts";
import { connect } from "../net/connect.ts";
import type { Conn, TlsClientParams } from "../net/conn.ts";
import { tlsWarmedUp } from "../net/tls_warm_up.ts";
import { errorText } from "../errors.ts";
import { PasswordFileError, readClientKey, readPasswordFile } from "./_customer_password.ts";

/** How long the connect to the provider, and a TLS handshake with it, may take. */
export const CONNECT_TIMEOUT_MS = 30_000;

/** What a poll read from its files. */
export interface PollFiles {
  readonly password: string | undefined;
  /**
   * The trust roots (PEM texts) when `fetch.ca` is set: the system roots and the file's, or the
   * file's alone with `fetch.ca_only: true`. Undefined: the system roots (TLS's default).
   */
  readonly caPem: string | readonly string[] | undefined;
  readonly clientCert: { readonly cert: string; readonly key: string } | undefined;
}

/** The connection, or the error that prevented it. */
export type ConnectOutcome =
  | { readonly ok: true; readonly conn: Conn }
  | { readonly ok: false; readonly error: unknown };

/** How a poll's first steps ended: a file is unusable (`message` names it), or connected. */
export type PollStart =
  | { readonly ok: false; readonly message: string }
  | { readonly ok: true; readonly files: PollFiles; readonly connected: ConnectOutcome };

/** Reads the poll's files, then connects; never rejects. */
export async function startPoll(
  config: FetchConfig,
  connectTimeoutMs: number = CONNECT_TIMEOUT_MS,
): Promise<PollStart> {
  const read = await readPollFiles(config);
  if (!read.ok) return read;
  const files = read.files;
  try {
    // The one-time crypto set-up of the first handshake (src/net/tls_warm_up.ts).
    if (config.tls === "implicit") await tlsWarmedUp();
    const tls = config.tls === "implicit"
      ? {
        tls: tlsClientParams({
          host: config.server.host,
          tlsServerName: config.tlsServerName,
          ...files,
          connectTimeoutMs,
        }),
      }
      : {};
    const { conn } = await connect({
      host: config.server.host,
      port: config.server.port,
      timeoutMs: connectTimeoutMs,
      // Without TLS the connection runs on Deno.TcpConn (src/net/native_conn.ts).
      plainOnly: config.tls === "none",
      ...tls,
    });
    return { ok: true, files, connected: { ok: true, conn } };
  } catch (error) {
    return { ok: true, files, connected: { ok: false, error } };
  }
}

/** The client TLS parameters for the provider: verified against `caPem` or the system roots. */
export function tlsClientParams(opts: {
  readonly host: string;
  readonly tlsServerName?: string | undefined;
  readonly caPem: string | readonly string[] | undefined;
  readonly clientCert?: { readonly cert: string; readonly key: string } | undefined;
  readonly connectTimeoutMs: number;
}): TlsClientParams {
  return {
    servername: opts.tlsServerName ?? opts.host,
    ...(opts.caPem !== undefined ? { ca: opts.caPem } : {}),
    ...(opts.clientCert !== undefined ? opts.clientCert : {}),
    rejectUnauthorized: true,
    timeoutMs: opts.connectTimeoutMs,
  };
}

/** Reads the files in a fixed order: the first unusable one is the one reported. */
async function readPollFiles(
  config: FetchConfig,
): Promise<{ ok: true; files: PollFiles } | { ok: false; message: string }> {
  let password: string | undefined;
  let clientCert: { cert: string; key: string } | undefined;
  let reading = "fetch.ca";
  try {
    if (config.passwordFile !== undefined) password = await readPasswordFile(config.passwordFile);
    if (config.clientCert !== undefined && config.clientKey !== undefined) {
      const key = await readClientKey(config.clientKey);
      reading = "fetch.client_cert";
      clientCert = { cert: withCertificate(await readNamedTextFile(config.clientCert)), key };
    }
    reading = "fetch.ca";
    const pem = config.ca === undefined
      ? undefined
      : withCertificate(await readNamedTextFile(config.ca));
    const caPem = pem === undefined || config.caOnly === true ? pem : [...await systemRoots(), pem];
    return { ok: true, files: { password, caPem, clientCert } };
  } catch (err) {
    const file = reading === "fetch.ca" ? config.ca : config.clientCert;
    const message = err instanceof PasswordFileError
      ? err.message
      : `Cannot read ${reading} "${file}": ${errorText(err)}`;
    return { ok: false, message };
  }
}

/**
 * The system roots `fetch.ca` is added to: node:tls takes its `ca` option instead of its own
 * roots, so they are given with it. Deno shows them to node:tls only under `--allow-sys` (sys
 * "ca", which Deno 2.9.6 cannot grant alone); without it, an error that says what to do.
 */
async function systemRoots(): Promise<readonly string[]> {
  const tls = (await import("node:tls")).default;
  try {
    // A lazy list: the permission is checked when it is read, so it is copied here.
    return [...tls.rootCertificates];
  } catch (err) {
    if (!(err instanceof Deno.errors.NotCapable)) throw err;
    const why = errorText(err);
    throw new Error(
      `it is added to the system roots, which Deno lets fetch read only with --allow-sys ` +
        `(${why}): grant --allow-sys, or set fetch.ca_only: true to trust fetch.ca alone`,
    );
  }
}

/**
 * A PEM text that holds a certificate, else an error: a key or a password file given as
 * fetch.ca would otherwise fail only in the handshake, as an untrusted server (exit 5).
 */
function withCertificate(pem: string): string {
  if (!pem.includes("-----BEGIN CERTIFICATE-----")) {
    throw new Error("it holds no PEM certificate (-----BEGIN CERTIFICATE-----)");
  }
  return pem;
}
