/**
 * The customer's client dialogue before reversal (RFC 2645 §5): connect, TLS (STARTTLS or
 * implicit, certificate verified, never a silent downgrade), EHLO, AUTH with the best common
 * mechanism, ATRN. Each way it can end is a value with its README.md exit code
 * (_customer_stops.ts); only a `250` to ATRN hands the Conn and reader on (to the SMTP server
 * role).
 */
import { decodeBase64, encodeBase64 } from "../wire/base64.ts";
import type { Conn } from "../net/conn.ts";
import { LineReader } from "../wire/line_reader.ts";
import type { Reply } from "../wire/reply.ts";
import { formatReplyText, isTransient } from "../wire/reply.ts";
import type { Capabilities } from "../wire/ehlo.ts";
import { type Answer, ClientLink } from "../smtp/client/link.ts";
import {
  atrnStop,
  type DialogStop,
  lostStop,
  stop,
  tlsOrNetText,
  unexpectedStop,
} from "./_customer_stops.ts";
import { chooseMechanism, createSaslClient, SaslClientError } from "../auth/sasl_client.ts";
import type { SaslClient } from "../auth/sasl_client.ts";
import type { Logger } from "../observe/log.ts";
import { REDACTED } from "../observe/log.ts";
import { errorText } from "../errors.ts";
import { tlsWarmedUp } from "../net/tls_warm_up.ts";
import { tlsClientParams } from "./customer_start.ts";
import type { ConnectOutcome } from "./customer_start.ts";

/** ATRN was accepted: the connection is ours to serve SMTP on. */
export interface DialogReversed {
  readonly kind: "reversed";
  readonly conn: Conn;
  readonly reader: LineReader;
  readonly mechanism: string;
}

/** What the dialogue needs. */
export interface DialogOptions {
  readonly host: string;
  readonly port: number;
  readonly tls: "starttls" | "implicit" | "none";
  /** The trust roots (PEM texts) when fetch.ca is set (customer_start.ts); else the system's. */
  readonly caPem: string | readonly string[] | undefined;
  /** fetch.ca_only: `caPem` is fetch.ca alone (said when the certificate is not trusted). */
  readonly caOnly?: boolean;
  /** The name to verify in the certificate instead of `host` (fetch.tls_server_name). */
  readonly tlsServerName?: string | undefined;
  readonly user: string;
  /** Undefined: AUTH EXTERNAL with `clientCert` is the only way in. */
  readonly password: string | undefined;
  /** Our certificate and key (PEM), presented in TLS; then EXTERNAL is preferred when offered. */
  readonly clientCert?: { readonly cert: string; readonly key: string } | undefined;
  readonly domains: readonly string[];
  /** Our name in EHLO. */
  readonly hostname: string;
  /**
   * The connection `startPoll` opened (under implicit TLS, handshake done), or why it failed;
   * the dialogue closes it unless it is reversed.
   */
  readonly connected: ConnectOutcome;
  /** Also the bound of the STARTTLS handshake. */
  readonly connectTimeoutMs: number;
  readonly commandTimeoutMs: number;
  /** RFC 2645 §5.2.1: at least 10 minutes, the provider may be working through its queue. */
  readonly atrnTimeoutMs: number;
  readonly log: Logger;
  readonly signal?: AbortSignal;
}

/** Runs the dialogue up to the ATRN reply; closes the connection unless it was reversed. */
export async function runCustomerDialog(opts: DialogOptions): Promise<DialogStop | DialogReversed> {
  const where = `${opts.host}:${opts.port}`;
  if (!opts.connected.ok) {
    const what = opts.tls === "implicit" ? "connect with TLS to" : "connect to";
    const why = tlsOrNetText(opts.connected.error, opts);
    return stop(5, "temporary", `Cannot ${what} "${where}": ${why}`);
  }
  const conn = opts.connected.conn;
  if (opts.signal?.aborted === true) {
    // Stopped while the connection was being opened: say nothing on it (an abort listener
    // added now would never fire, and the dialogue would go on to AUTH and ATRN).
    conn.destroy();
    return stop(5, "temporary", `Stopped before the session with "${where}" began`);
  }
  const dialog = new Dialog(conn, opts, where);
  const onAbort = () => conn.destroy();
  opts.signal?.addEventListener("abort", onAbort);
  try {
    const result = await dialog.run();
    if (result.kind === "stop") await dialog.quit();
    return result;
  } catch (err) {
    conn.destroy();
    return stop(5, "temporary", `Session with "${where}" failed: ${errorText(err)}`);
  } finally {
    opts.signal?.removeEventListener("abort", onAbort);
  }
}

class Dialog {
  readonly #conn: Conn;
  readonly #link: ClientLink;
  readonly #opts: DialogOptions;
  readonly #where: string;
  readonly #log: Logger;

  constructor(conn: Conn, opts: DialogOptions, where: string) {
    this.#conn = conn;
    // The same reader serves the reversed session. Its body chunks are given back as soon as the
    // local hand-off returned (`releaseConsumed`): every sink there copies what it keeps or has
    // written it when its write resolves (fetch's peak RSS with one 50 MiB message, #13).
    const reader = new LineReader(conn, { releaseConsumed: true });
    this.#link = new ClientLink({ conn, reader, log: opts.log });
    this.#opts = opts;
    this.#where = where;
    this.#log = opts.log;
  }

  async run(): Promise<DialogStop | DialogReversed> {
    const greeting = await this.#read(this.#opts.commandTimeoutMs);
    if ("kind" in greeting) return greeting;
    if (greeting.code !== 220) return unexpectedStop("greeting", greeting, this.#where);
    let caps = await this.#ehlo();
    if ("kind" in caps) return caps;

    if (this.#opts.tls === "starttls") {
      if (!caps.startTls) {
        return stop(
          5,
          "temporary",
          `Server "${this.#where}" does not offer STARTTLS; refusing to continue in plaintext ` +
            `(set fetch.tls: none to allow it, or implicit for a TLS port)`,
        );
      }
      const r = await this.#command("STARTTLS");
      if ("kind" in r) return r;
      if (r.code !== 220) return unexpectedStop("STARTTLS", r, this.#where, 5);
      // RFC 3207 §4.2 / CVE-2011-0411: bytes after the 220 came in plaintext; the link drops them.
      try {
        await tlsWarmedUp(); // started by `fetch` (src/net/tls_warm_up.ts); done by now, mostly
        const t = await this.#link.startTls(tlsClientParams(this.#opts));
        if (t.discardedBytes > 0) {
          this.#log.warn("starttls_injection_discarded", { bytes: t.discardedBytes });
        }
      } catch (err) {
        return stop(
          5,
          "temporary",
          `TLS with "${this.#where}" failed: ${tlsOrNetText(err, this.#opts)}`,
        );
      }
      caps = await this.#ehlo(); // RFC 3207 §4.2: forget what was learnt before TLS
      if ("kind" in caps) return caps;
    }
    this.#log.info("connected", { server: this.#where, tls: this.#conn.isSecure });

    if (!caps.atrn) {
      return stop(4, "refused", `Server "${this.#where}" does not offer ATRN`);
    }
    const external = await this.#external(caps);
    if (external.kind === "done") return this.#afterAuth(external.auth);
    const password = this.#opts.password;
    if (password === undefined) {
      // Only a certificate is configured (the config requires one of the two).
      const offered = caps.authMechanisms.join(" ") || "none";
      return stop(
        3,
        "authFailed",
        `Server "${this.#where}" does not offer AUTH EXTERNAL over TLS (offered: ${offered}) ` +
          `and no fetch.password_file is set`,
      );
    }
    const mechanism = chooseMechanism(caps.authMechanisms, this.#conn.isSecure);
    if (mechanism === undefined) {
      const offered = caps.authMechanisms.join(" ") || "none";
      return stop(
        3,
        "authFailed",
        `No usable AUTH mechanism on "${this.#where}" (offered: ${offered}` +
          `${this.#conn.isSecure ? "" : "; PLAIN and LOGIN need TLS"})`,
      );
    }
    const auth = await this.#auth(
      mechanism,
      createSaslClient(mechanism, { user: this.#opts.user, password }),
    );
    return this.#afterAuth(auth ?? mechanism);
  }

  /**
   * AUTH EXTERNAL (RFC 4422 appendix A) when we present a certificate and the server offers
   * it over TLS. "done": authenticated (`auth` = "EXTERNAL") or stopped (refused without a
   * password to fall back on, or deferred); "next": try the password mechanisms.
   */
  async #external(
    caps: Capabilities,
  ): Promise<{ kind: "done"; auth: string | DialogStop } | { kind: "next" }> {
    if (this.#opts.clientCert === undefined) return { kind: "next" };
    const isOffered = caps.authMechanisms.some((m) => m.toUpperCase() === "EXTERNAL");
    if (!isOffered || !this.#conn.isSecure) {
      this.#log.info("auth_external_not_offered", { server: this.#where });
      return { kind: "next" };
    }
    const result = await this.#auth("EXTERNAL", EXTERNAL_CLIENT);
    if (result === undefined) return { kind: "done", auth: "EXTERNAL" };
    if (result.result === "authFailed" && this.#opts.password !== undefined) {
      this.#log.warn("auth_external_refused", { user: this.#opts.user, reason: result.message });
      return { kind: "next" };
    }
    return { kind: "done", auth: result };
  }

  /** ATRN once authenticated (`auth` is the mechanism used) or the stop that ended AUTH. */
  async #afterAuth(auth: string | DialogStop): Promise<DialogStop | DialogReversed> {
    if (typeof auth !== "string") return auth;
    const mechanism = auth;
    const atrn = this.#opts.domains.length > 0 ? `ATRN ${this.#opts.domains.join(",")}` : "ATRN";
    const r = await this.#command(atrn, this.#opts.atrnTimeoutMs);
    if ("kind" in r) return r;
    this.#log.info("atrn_reply", { code: r.code, domains: this.#opts.domains.join(",") || "*" });
    return atrnStop(r, this.#where) ??
      { kind: "reversed", conn: this.#conn, reader: this.#link.reader, mechanism };
  }

  /** EHLO without HELO fallback: ODMR needs the AUTH and ATRN extensions (RFC 2645 §5). */
  async #ehlo(): Promise<Capabilities | DialogStop> {
    const hello = await this.#link.hello(this.#opts.hostname, {
      timeoutMs: this.#opts.commandTimeoutMs,
      heloFallback: false,
    });
    switch (hello.kind) {
      case "ready":
        return hello.caps;
      case "refused":
        return unexpectedStop("EHLO", hello.reply, this.#where);
      case "lost":
        return lostStop(hello.loss, this.#where);
      default: {
        const never: never = hello;
        throw new Error(`unreachable hello ${JSON.stringify(never)}`);
      }
    }
  }

  /** SASL exchange (RFC 4954); undefined on 235 with the server verified (SCRAM). */
  async #auth(mechanism: string, client: SaslExchange): Promise<DialogStop | undefined> {
    const initial = client.initialResponse();
    let line = `AUTH ${mechanism}`;
    if (initial !== undefined) line += ` ${initial.length === 0 ? "=" : encodeBase64(initial)}`;
    this.#log.debug("auth", { mechanism, payload: REDACTED });
    let r = await this.#command(line);
    for (let step = 0; step < 10; step++) {
      if ("kind" in r) return r;
      if (r.code === 235) {
        try {
          client.verifyFinal();
        } catch (err) {
          return stop(3, "authFailed", `Server "${this.#where}" failed SCRAM: ${errorText(err)}`);
        }
        this.#log.info("authenticated", { user: this.#opts.user, mechanism });
        return undefined;
      }
      if (r.code !== 334) {
        const text = formatReplyText(r).trim();
        return isTransient(r)
          ? stop(5, "temporary", `AUTH ${mechanism} deferred by "${this.#where}": ${text}`)
          : stop(
            3,
            "authFailed",
            `AUTH ${mechanism} as "${this.#opts.user}" failed: ${text}` +
              (mechanism === "EXTERNAL"
                ? ` (is fetch.client_cert pinned on the provider with \`user certs ` +
                  `${this.#opts.user} --add\`?)`
                : ""),
          );
      }
      let answer: Uint8Array;
      try {
        const challenge = decodeBase64((r.lines[0] ?? "").trim());
        if (challenge === undefined) throw new Error("the server sent malformed base64");
        answer = await client.next(challenge);
      } catch (err) {
        await this.#command("*"); // cancel (RFC 4954 §4); the 501 does not matter
        const why = err instanceof SaslClientError ? err.message : errorText(err);
        return stop(3, "authFailed", `AUTH ${mechanism} with "${this.#where}" aborted: ${why}`);
      }
      r = await this.#command(encodeBase64(answer));
    }
    return stop(3, "authFailed", `AUTH ${mechanism} with "${this.#where}" did not end`);
  }

  async #command(
    line: string,
    timeoutMs = this.#opts.commandTimeoutMs,
  ): Promise<Reply | DialogStop> {
    return this.#replyOrStop(await this.#link.command(line, timeoutMs));
  }

  async #read(timeoutMs: number): Promise<Reply | DialogStop> {
    return this.#replyOrStop(await this.#link.read(timeoutMs));
  }

  #replyOrStop(answer: Answer): Reply | DialogStop {
    return answer.kind === "reply" ? answer.reply : lostStop(answer.loss, this.#where);
  }

  /** Best-effort QUIT and close after a stop. */
  async quit(): Promise<void> {
    if (!this.#link.isLost && !this.#conn.closed) await this.#link.quit(5_000);
    await this.#conn.close().catch(() => {});
  }
}

/** The steps of one SASL client exchange that the dialogue drives. */
type SaslExchange = Pick<SaslClient, "initialResponse" | "next" | "verifyFinal">;

/**
 * EXTERNAL with an empty authorization identity (`AUTH EXTERNAL =`): the provider derives
 * the user from the pinned certificate. It sends no challenge after an initial response.
 */
const EXTERNAL_CLIENT: SaslExchange = {
  initialResponse: () => new Uint8Array(0),
  next: () => Promise.reject(new SaslClientError("Unexpected EXTERNAL challenge")),
  verifyFinal: () => {},
};
