/** Help texts: code, not files (deno compile). Wording follows README.md "Commands". */
import { PROGRAM_NAME, VERSION } from "../version.ts";

const CONFIG_LINE =
  `  --config F    config file (default: $ODMR_RELAY_CONFIG, else ./config.yaml, else defaults)`;

export const MAIN_HELP = `${PROGRAM_NAME} ${VERSION}: On-Demand Mail Relay (RFC 2645, ATRN)

Usage: ${PROGRAM_NAME} COMMAND [OPTIONS]

Commands:
  serve          Provider: inbound SMTP (public MX) and the ODMR listener
  fetch          Customer: connect, AUTH, ATRN, hand mail to fetch.deliver_to
  user           Manage users and the domains they own (add, passwd, domains, list, remove)
  queue          Inspect and delete queued mail (list, show, delete)
  check-config   Validate the config and print the effective settings

Options:
${CONFIG_LINE}
  -h, --help    print help (also: ${PROGRAM_NAME} COMMAND --help)
  -V, --version print the version

Exit codes: 0 success, 1 runtime failure, 2 usage or config error,
  3 fetch: authentication failed, 4 fetch: refused by the provider, 5 fetch: temporary failure
`;

/** Per-command help, keyed by command name. */
export const COMMAND_HELP = {
  serve: `Usage: ${PROGRAM_NAME} serve [--config F]

Runs the provider: inbound SMTP on smtp.listen (accepting mail only for domains a user owns)
and the ODMR listener on odmr.listen. Logs one "listening" event per listener with the bound
address. Stops on SIGINT or SIGTERM: stops accepting, lets sessions finish (10 s at most),
exits 0. Mail that was not acknowledged with 250 is not kept.

Options:
${CONFIG_LINE}
`,
  fetch: `Usage: ${PROGRAM_NAME} fetch [--config F] [--once]

Customer side: connects to fetch.server, authenticates, says ATRN and hands the mail to
fetch.deliver_to, acknowledging upstream only once the local side has it. Without --once:
polls every fetch.interval, with backoff after failures, until SIGINT/SIGTERM.

Options:
${CONFIG_LINE}
  --once        one poll, then exit (0 delivered or nothing waiting, 3 auth failed,
                4 refused, 5 temporary failure)
`,
  user: `Usage: ${PROGRAM_NAME} user SUBCOMMAND [--config F]

  user add NAME --domain D [--domain D...] [--password-stdin]
  user passwd NAME [--password-stdin]
  user domains NAME [--add D...] [--remove D...]
  user list [--json]
  user remove NAME

Without --password-stdin the password is prompted for (no echo) on a terminal.
Changes apply at once, also while serve is running.

Options:
${CONFIG_LINE}
`,
  queue: `Usage: ${PROGRAM_NAME} queue SUBCOMMAND [--config F]

  queue list [--domain D] [--json]
  queue show ID
  queue delete ID... | queue delete --domain D [--yes]

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
