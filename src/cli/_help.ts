/** Help texts: code, not files (deno compile). Wording follows README.md "Commands". */
import { PROGRAM_NAME, VERSION } from "../version.ts";

const CONFIG_LINE =
  `  --config F    config file (default: $ODMR_RELAY_CONFIG, else ./config.yaml, else defaults)`;

export const MAIN_HELP = `${PROGRAM_NAME} ${VERSION}: On-Demand Mail Relay (RFC 2645, ATRN)

Usage: ${PROGRAM_NAME} COMMAND [OPTIONS]

Commands:
  serve          Provider: inbound SMTP (public MX), ODMR, submission and outbound delivery
  fetch          Customer: connect, AUTH, ATRN, hand mail to fetch.deliver_to
  user           Manage users (add, passwd, domains, list, show, test, remove, certs)
  queue          Inspect, requeue and delete queued mail (list, show, delete, requeue, summary, migrate)
  dkim           Outbound DKIM signing keys (keygen, list, remove)
  check-config   Validate the config and print the effective settings

Options:
${CONFIG_LINE}
  -h, --help    print help (also: ${PROGRAM_NAME} COMMAND --help)
  -V, --version print the version

Exit codes: 0 success, 1 runtime failure, 2 usage or config error,
  3 fetch: authentication failed (user test: the password does not match),
  4 fetch: refused by the provider, 5 fetch: temporary failure
`;

const LOG_LINES = `  -v, --verbose log debug events too (overrides log.level)
  -q, --quiet   log warnings and errors only (overrides log.level)`;

/** Per-command help, keyed by command name. */
export const COMMAND_HELP = {
  serve: `Usage: ${PROGRAM_NAME} serve [--config F] [-v | -q]

Runs the provider: inbound SMTP on smtp.listen (accepting mail only for domains a user owns),
the ODMR listener on odmr.listen, the submission port on submission.listen (AUTH required)
and the outbound worker that sends submitted mail for other domains to their MX hosts. Logs
one "listening" event per listener with the bound address. SIGHUP re-reads tls.cert and
tls.key. Stops on SIGINT or SIGTERM: stops accepting, answers 421 to idle sessions, lets
busy ones finish (10 s at most), exits 0. Mail that was not acknowledged with 250 is not
kept.

Options:
${CONFIG_LINE}
${LOG_LINES}
`,
  fetch: `Usage: ${PROGRAM_NAME} fetch [--config F] [--once] [-v | -q]

Customer side: connects to fetch.server, authenticates, says ATRN and hands the mail to
fetch.deliver_to, acknowledging upstream only once the local side has it. Without --once:
polls every fetch.interval, with backoff after failures, until SIGINT/SIGTERM.

Options:
${CONFIG_LINE}
  --once        one poll, then exit (0 delivered or nothing waiting, 3 auth failed,
                4 refused, 5 temporary failure)
${LOG_LINES}
`,
  user: `Usage: ${PROGRAM_NAME} user SUBCOMMAND [--config F]

  user add NAME --domain D [--domain D...] [--password-stdin]
  user passwd NAME [--password-stdin]
  user domains NAME [--add D...] [--remove D...]
  user list [--json]
  user show NAME [--json]
  user test NAME [--password-stdin]
  user remove NAME
  user certs NAME [--add FILE] [--remove FINGERPRINT]

list      users, their domains, the mail waiting for them (messages, bytes, oldest)
          and their last successful collection (ATRN)
show      one user with the same figures, per domain too
test      checks a password against every stored verifier (SCRAM-SHA-256, CRAM-MD5,
          PLAIN/LOGIN): exit 0 when all accept it, 3 when any refuses (or no such user)
certs     client certificates pinned for AUTH EXTERNAL (SHA-256 fingerprints); --add
          pins the certificate in a PEM file and prints its fingerprint

Without --password-stdin the password is prompted for (no echo) on a terminal.
Changes apply at once, also while serve is running.

Exit codes: 0 ok, 1 unknown user or runtime failure, 2 usage error, 3 user test: no match.

Options:
${CONFIG_LINE}
`,
  queue: `Usage: ${PROGRAM_NAME} queue SUBCOMMAND [--config F]

  queue list [--domain D] [--status S]... [--older-than DUR] [--json]
  queue show ID [--json] [--body]
  queue delete ID... | queue delete --domain D [--yes]
  queue requeue ID... | queue requeue --domain D | queue requeue --failed
  queue summary [--json]
  queue migrate [--from DATA_DIR]   copy a SQLite data_dir into queue.postgres
  queue migrate --clear-mark [--from DATA_DIR]

list      messages waiting; --domain D and --status S (queued, delivering, failed,
          expired; repeatable) show only those recipients; --older-than DUR (30m, 12h,
          2d) only messages received at least that long ago
show      envelope, recipients with their last reply, and the header block;
          --json: the list --json shape plus attempts and last_reply per recipient;
          --body: the stored message on stdout, byte for byte; both: the --json
          object with the stored message in body_base64
delete    asks on a terminal unless --yes; without a terminal, --domain needs --yes
          (otherwise nothing is deleted and the exit code is 2)
requeue   failed recipients (of those messages, of that domain, or all) become queued
          and are delivered at the next ATRN (route mx: to their MX hosts, due at
          once); expired ones are left alone
summary   waiting recipients per domain in age columns (5m 15m 1h 4h 12h 1d 2d 4d 7d
          7d+: each counts what is older than the column before, up to its own bound)
migrate   marks the SQLite queue it copies: a SQLite serve refuses it from then on
          (it would deliver the copies again); --clear-mark takes the mark off

Exit codes: 0 ok, 1 unknown message ID or runtime failure, 2 usage error.

Options:
${CONFIG_LINE}
`,
  dkim: `Usage: ${PROGRAM_NAME} dkim SUBCOMMAND [--config F]

  dkim keygen DOMAIN [--selector S] [--algorithm rsa|ed25519]
  dkim list [--json]
  dkim remove DOMAIN SELECTOR

keygen stores a new private key (mode 0600) under data_dir/dkim/ (queue.backend: postgres:
in the shared database) and prints the DNS TXT record to publish (S default: the algorithm
and today's date; algorithm default: rsa, 2048 bits). Outbound mail from DOMAIN is signed
with every key of DOMAIN. list prints a line per key, tab-separated: domain, selector,
algorithm, created_at, DNS name and TXT value (--json: the same fields by name).

Options:
${CONFIG_LINE}
`,
  "check-config": `Usage: ${PROGRAM_NAME} check-config [--config F]

Loads and validates the config and prints the effective settings as YAML. Exits 0 when the
config is valid, 2 otherwise (the message names the file and the key path).

Options:
${CONFIG_LINE}
`,
} as const;

export type CommandName = keyof typeof COMMAND_HELP;
