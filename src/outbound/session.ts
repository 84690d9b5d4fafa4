/**
 * Opens an SMTP session at one MX address, ready for transactions: connect, greeting, EHLO,
 * STARTTLS when offered (`opportunistic`) or else no session (`required`: 4.7.10), EHLO again
 * under TLS (RFC 3207 §4.2). A host that cannot be reached, greets with other than 220 or
 * refuses EHLO comes back as `skipped` with the reply to report; the caller tries the next.
 * A STARTTLS that fails (a reply other than 220, a failed handshake, the connection lost at the
 * EHLO under TLS) skips the host under `required`; under `opportunistic` the same address is
 * connected to once more and the session goes on in plaintext without asking for STARTTLS
 * (RFC 3207 §4.1, RFC 7435 §3; Postfix's "may" level does the same), else mail for an MX with
 * broken TLS would wait until it expires; unless the caller says `fallback: false` (mail at its
 * first attempt: skipped, `deliver.ts`). A TLS session lost later (`deliver.ts`) is followed by
 * a session opened `plaintext`, which never asks for STARTTLS.
 * Certificates are not verified: MX hosts rarely present one for the name we looked up, and
 * without DANE/MTA-STS nothing says which to expect.
 */
import { errorText } from "../errors.ts";
import { connect } from "../net/connect.ts";
import type { Conn } from "../net/conn.ts";
import type { Logger } from "../observe/log.ts";
import { LineReader } from "../wire/line_reader.ts";
import { reply } from "../wire/reply.ts";
import type { Reply } from "../wire/reply.ts";
import { SmtpSender } from "../smtp/sender.ts";
import type { SenderTimeouts } from "../smtp/sender.ts";

/** How sessions are opened. */
export interface SessionOptions {
  /** Our EHLO name (`outbound.helo`). */
  readonly helo: string;
  readonly log: Logger;
  /** SMTP port of MX hosts: 25 in a deployment (tests use loopback addresses, not ports). */
  readonly port: number;
  readonly connectTimeoutMs: number;
  readonly tls: "opportunistic" | "required";
  readonly timeouts?: Partial<SenderTimeouts>;
}

/** One address of an MX host. */
export interface MxTarget {
  readonly name: string;
  readonly address: string;
}

/** A session ready for `send`/`sendMany`; `close()` says QUIT (if still possible) and closes. */
export interface MxSession {
  readonly sender: SmtpSender;
  readonly conn: Conn;
  /** `name[address]`, as the log lines and results name the host. */
  readonly where: string;
  /** The session runs under STARTTLS. */
  readonly isTls: boolean;
  close(): Promise<void>;
}

export type OpenResult =
  | { readonly kind: "session"; readonly session: MxSession }
  | {
    readonly kind: "skipped";
    readonly reply: Reply;
    readonly reason: string;
    /** The connect failed at once for want of a route (or of the address family) from here. */
    readonly isNoRoute?: boolean;
  };

/** `outbound.tls: required` and the host offers no STARTTLS (RFC 3207; X.7.10 encryption needed). */
export const TLS_REQUIRED: Reply = reply(451, "4.7.10", "TLS required but not offered");
const CONNECTION_FAILED: Reply = reply(451, "4.4.1", "Connection failed");
/**
 * Connect errors that say this host cannot reach the address at all, without a packet sent: no
 * route to its network (an IPv6 address on a host without IPv6 routing), no such family, or no
 * source address for it (IPv6 switched off: `disable_ipv6`, EADDRNOTAVAIL, which Deno's node:net
 * reports as EINVAL). EHOSTUNREACH is not one: it names the host (no neighbour answered, a
 * router's "host unreachable"), like a refused or timed-out connect, and costs time (3 s of
 * ARP/ND), so it counts as Postfix's smtp_mx_address_limit counts every address tried.
 */
const NO_ROUTE_CODES: ReadonlySet<unknown> = new Set([
  "ENETUNREACH",
  "EAFNOSUPPORT",
  "EADDRNOTAVAIL",
  "EINVAL",
]);

/** STARTTLS failed on this connection (which is closed): plaintext may be tried again. */
type Attempt = OpenResult | {
  readonly kind: "tls_failed";
  readonly reply: Reply;
  readonly reason: string;
};

/**
 * Opens a session at `target`, or says why it was skipped. Never throws for peer faults.
 * `plaintext`: STARTTLS is not asked for (opportunistic TLS already failed at this address).
 * `fallback: false`: a failed opportunistic STARTTLS skips the address instead of going on in
 * plaintext (the mail has not waited for a retry yet: `deliver.ts`).
 */
export async function openMxSession(
  target: MxTarget,
  opts: SessionOptions,
  how: { readonly plaintext?: boolean; readonly fallback?: boolean } = {},
): Promise<OpenResult> {
  if (how.plaintext === true && opts.tls === "opportunistic") {
    const plain = await attempt(target, opts, false);
    return plain.kind === "tls_failed" ? { ...plain, kind: "skipped" } : plain;
  }
  const first = await attempt(target, opts, true);
  if (first.kind !== "tls_failed") return first;
  if (opts.tls === "required") return { kind: "skipped", reply: first.reply, reason: first.reason };
  if (how.fallback === false) {
    return {
      kind: "skipped",
      reply: reply(451, "4.7.0", `STARTTLS failed (${first.reason}); plaintext only at a retry`),
      reason: `${first.reason}; plaintext only at a retry`,
    };
  }
  opts.log.info("outbound_tls_fallback", {
    host: `${target.name}[${target.address}]`,
    reason: first.reason,
  });
  const plain = await attempt(target, opts, false);
  // Never "tls_failed": STARTTLS is not asked for this time.
  return plain.kind === "tls_failed" ? { ...plain, kind: "skipped" } : plain;
}

/** One connection; STARTTLS is asked for when offered and `tryTls`. */
async function attempt(target: MxTarget, opts: SessionOptions, tryTls: boolean): Promise<Attempt> {
  let conn: Conn;
  try {
    ({ conn } = await connect({
      host: target.address,
      port: opts.port,
      timeoutMs: opts.connectTimeoutMs,
    }));
  } catch (err) {
    const reason = errorText(err);
    const code = typeof err === "object" && err !== null && "code" in err ? err.code : undefined;
    return {
      kind: "skipped",
      reply: CONNECTION_FAILED,
      reason,
      isNoRoute: NO_ROUTE_CODES.has(code),
    };
  }
  const sender = new SmtpSender({
    conn,
    reader: new LineReader(conn),
    log: opts.log,
    options: {
      hostname: opts.helo,
      lineRecords: false,
      ...(opts.timeouts !== undefined ? { timeouts: opts.timeouts } : {}),
    },
  });
  const where = `${target.name}[${target.address}]`;
  const close = async () => {
    try {
      await sender.quit();
    } finally {
      await conn.close();
    }
  };
  const skip = async (r: Reply, reason: string): Promise<OpenResult> => {
    await close();
    return { kind: "skipped", reply: r, reason };
  };
  const tlsFailed = async (r: Reply, step: string): Promise<Attempt> => {
    const reason = sender.isConnectionLost
      ? `${step}: ${sender.lossReason ?? "connection lost"}`
      : `${step} ${r.code}`;
    await close();
    return { kind: "tls_failed", reply: r, reason };
  };
  let isTls = false;
  try {
    const greeting = await sender.greet();
    if (greeting.code !== 220) return await skip(greeting, `greeting ${greeting.code}`);
    let hello = await sender.hello();
    if ("code" in hello) return await skip(hello, `hello ${hello.code}`);
    if (hello.startTls && tryTls) {
      const tls = await sender.startTls({ servername: target.name, rejectUnauthorized: false });
      if ("code" in tls) return await tlsFailed(tls, "starttls");
      isTls = true;
      hello = await sender.hello();
      // A TLS session lost at its first records is broken TLS too; a reply under TLS is not.
      if ("code" in hello && sender.isConnectionLost) {
        return await tlsFailed(hello, "hello after TLS");
      }
      if ("code" in hello) return await skip(hello, `hello after TLS ${hello.code}`);
    } else if (opts.tls === "required") {
      return await skip(TLS_REQUIRED, "no STARTTLS offered");
    }
  } catch (err) {
    // Only a bug gets here (the sender returns replies for peer faults); the socket must go.
    conn.destroy();
    throw err;
  }
  return { kind: "session", session: { sender, conn, where, isTls, close } };
}
