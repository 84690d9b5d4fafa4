/**
 * How the customer's dialogue before reversal can end (_customer_dialog.ts): each stop is a
 * value with its README.md exit code and a message for people that names the server and, for
 * a certificate problem, the setting to change.
 */
import type { Reply } from "../wire/reply.ts";
import { formatReplyText, isPermanent } from "../wire/reply.ts";
import type { Loss } from "../smtp/client/link.ts";
import { errorText } from "../errors.ts";

/** README.md exit codes of `fetch`. */
export type FetchExitCode = 0 | 1 | 2 | 3 | 4 | 5;

/** How a fetch ended, in the words of README.md. */
export type FetchResult =
  | "delivered"
  | "noMail"
  | "authFailed"
  | "refused"
  | "temporary"
  | "config";

/** The dialogue ended before reversal. */
export interface DialogStop {
  readonly kind: "stop";
  readonly exitCode: FetchExitCode;
  readonly result: FetchResult;
  /** For people: what happened, naming the server. */
  readonly message: string;
}

/** A stop. */
export function stop(exitCode: FetchExitCode, result: FetchResult, message: string): DialogStop {
  return { kind: "stop", exitCode, result, message };
}

/** The stop for a reply to ATRN; undefined for `250` (reversal, RFC 2645 §5.2). */
export function atrnStop(r: Reply, where: string): DialogStop | undefined {
  const text = formatReplyText(r).trim();
  switch (r.code) {
    case 250:
      return undefined;
    case 453:
      return stop(0, "noMail", `No mail waiting on "${where}"`);
    case 450:
      return stop(4, "refused", `ATRN refused by "${where}" (not authorized): ${text}`);
    case 502:
      return stop(4, "refused", `ATRN not available on "${where}": ${text}`);
    case 530:
      return stop(4, "refused", `ATRN refused by "${where}" (AUTH required): ${text}`);
    case 451:
      return stop(5, "temporary", `ATRN deferred by "${where}": ${text}`);
    default:
      return !isPermanent(r)
        ? stop(5, "temporary", `ATRN deferred by "${where}": ${text}`)
        : stop(4, "refused", `ATRN refused by "${where}": ${text}`);
  }
}

/** A lost link ends the dialogue as a temporary failure (exit 5), saying how it was lost. */
export function lostStop(loss: Loss, where: string): DialogStop {
  switch (loss.cause) {
    case "closing":
      return stop(
        5,
        "temporary",
        `Server "${where}" closed: ${formatReplyText(loss.reply).trim()}`,
      );
    case "eof":
      return stop(5, "temporary", `Connection to "${where}" closed by the server`);
    case "timeout":
      return stop(5, "temporary", `Timed out waiting for "${where}"`);
    case "garbage":
      return stop(5, "temporary", `Bad reply from "${where}": ${loss.reason}`);
    case "write":
    case "local":
      return stop(5, "temporary", `Connection to "${where}" lost: ${loss.reason}`);
    default: {
      const never: never = loss.cause;
      throw new Error(`unreachable loss ${never}`);
    }
  }
}

/** A reply the dialogue did not expect (exit 5 by default: maybe a passing fault). */
export function unexpectedStop(
  what: string,
  r: Reply,
  where: string,
  exitCode: FetchExitCode = 5,
): DialogStop {
  const text = formatReplyText(r).trim();
  return stop(
    exitCode,
    "temporary",
    `Unexpected reply to ${what} from "${where}": ${text}`,
  );
}

/** A certificate failure says which (wrong name, or untrusted) and what to set; others as is. */
export function tlsOrNetText(
  err: unknown,
  opts: {
    readonly host: string;
    readonly tlsServerName?: string | undefined;
    readonly caPem: string | readonly string[] | undefined;
    readonly caOnly?: boolean;
  },
): string {
  const text = errorText(err);
  const code = err instanceof Error && "code" in err ? String(err.code) : "";
  const name = opts.tlsServerName ?? opts.host;
  if (/ERR_TLS_CERT_ALTNAME|does not match certificate/i.test(code + " " + text)) {
    return `certificate of "${opts.host}" does not name "${name}": ${text} (set ` +
      `fetch.tls_server_name to a name the certificate has)`;
  }
  if (/CERT|SELF_SIGNED|UNABLE_TO_VERIFY|HOSTNAME/i.test(code + " " + text)) {
    const hint = opts.caPem === undefined
      ? "give its CA in fetch.ca"
      : opts.caOnly === true
      ? "it is not signed by the CA in fetch.ca, the only one trusted with fetch.ca_only: true"
      : "it is signed neither by one of the system roots nor by the CA in fetch.ca";
    return `certificate of "${opts.host}" not trusted: ${text} (${hint})`;
  }
  return text;
}
