/**
 * The `fetch:` section (the customer side: where to fetch from, with which credentials, and
 * where to hand the mail to). Kept apart from the validator's general narrowing; every error
 * names the key path like the rest.
 */
import type { DeliverTo, FetchConfig } from "./types.ts";
import { describe, splitHostPort, type Validator } from "./_validator.ts";
import * as D from "./defaults.ts";

export const FETCH_KEYS = [
  "server",
  "tls",
  "ca",
  "ca_only",
  "tls_server_name",
  "user",
  "password_file",
  "client_cert",
  "client_key",
  "domains",
  "deliver_to",
  "interval",
] as const;

/** `fetch:`; required keys, and password or client certificate (not neither). */
export function parseFetch(v: Validator, value: unknown): FetchConfig {
  const m = v.mapping(value, "fetch", FETCH_KEYS);
  for (const required of ["server", "user"] as const) {
    if (m[required] === undefined) {
      v.fail(`fetch.${required}`, "is required when fetch is set");
    }
  }
  const isSet = (x: unknown) => x !== undefined && x !== null;
  if (isSet(m.client_cert) !== isSet(m.client_key)) {
    const missing = isSet(m.client_cert) ? "client_key" : "client_cert";
    v.fail(
      `fetch.${missing}`,
      "is required with fetch.client_cert/client_key (both or neither)",
    );
  }
  if (!isSet(m.password_file) && !isSet(m.client_cert)) {
    v.fail(
      "fetch.password_file",
      "is required when fetch is set (or fetch.client_cert and fetch.client_key, for AUTH EXTERNAL)",
    );
  }
  const tls = v.oneOf(m.tls ?? D.DEFAULT_FETCH_TLS, "fetch.tls", ["starttls", "implicit", "none"]);
  if (tls === "none" && isSet(m.client_cert) && !isSet(m.password_file)) {
    // No way to log in: every poll would end with exit 3.
    v.fail(
      "fetch.client_cert",
      "is used only over TLS (AUTH EXTERNAL is never sent in plaintext): with fetch.tls: none, " +
        "set fetch.password_file",
    );
  }
  const caOnly = isSet(m.ca_only) && v.boolean(m.ca_only, "fetch.ca_only");
  if (caOnly && !isSet(m.ca)) {
    v.fail("fetch.ca_only", "is true, which needs fetch.ca (the only trust root it keeps)");
  }
  const domains = m.domains ?? [];
  if (!Array.isArray(domains)) {
    v.fail(
      "fetch.domains",
      `must be a list of domains: current value is ${describe(domains)}`,
    );
  }
  return {
    server: v.hostPort(m.server, "fetch.server", D.ODMR_PORT),
    tls,
    ca: m.ca === undefined || m.ca === null ? undefined : v.path(m.ca, "fetch.ca"),
    ...(caOnly ? { caOnly } : {}),
    ...(m.tls_server_name === undefined || m.tls_server_name === null
      ? {}
      : { tlsServerName: v.domain(m.tls_server_name, "fetch.tls_server_name") }),
    user: v.string(m.user, "fetch.user"),
    passwordFile: isSet(m.password_file)
      ? v.path(m.password_file, "fetch.password_file")
      : undefined,
    ...(isSet(m.client_cert)
      ? {
        clientCert: v.path(m.client_cert, "fetch.client_cert"),
        clientKey: v.path(m.client_key, "fetch.client_key"),
      }
      : {}),
    domains: domains.map((d: unknown, i) => v.domain(d, `fetch.domains[${i}]`)),
    deliverTo: deliverTo(v, m.deliver_to ?? D.DEFAULT_FETCH_DELIVER_TO, "fetch.deliver_to"),
    intervalMs: v.timerDuration(
      m.interval ?? D.DEFAULT_FETCH_INTERVAL,
      "fetch.interval",
      D.MIN_FETCH_INTERVAL_MS,
    ),
  };
}

/** `fetch.deliver_to`: a local SMTP/LMTP server or a Maildir. */
function deliverTo(v: Validator, value: unknown, key: string): DeliverTo {
  const s = v.string(value, key);
  const forms = "smtp://HOST:PORT, lmtp://HOST:PORT, lmtp+unix:/PATH or maildir:/PATH";
  const bad = (): never => v.fail(key, `must be ${forms}: current value is ${describe(s)}`);
  const m = /^(smtp|lmtp|lmtp\+unix|maildir):(.*)$/.exec(s);
  if (!m) return bad();
  const scheme = m[1] as string;
  const rest = m[2] as string;
  if (scheme === "smtp" || scheme === "lmtp") {
    if (!rest.startsWith("//")) return bad();
    const where = splitHostPort(rest.slice(2), scheme === "smtp" ? 25 : 24);
    if (where === undefined) return bad();
    return { kind: scheme, ...where };
  }
  const p = rest.startsWith("//") ? rest.slice(2) : rest;
  if (p === "") return bad();
  const resolved = v.resolvePath(p);
  return scheme === "maildir" ? { kind: "maildir", path: resolved } : {
    kind: "lmtpUnix",
    path: resolved,
  };
}
