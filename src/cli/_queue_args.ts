/**
 * Parses `queue SUBCOMMAND …` arguments into one typed command (README.md "Commands").
 * Pure: no database, no output. Every refusal names the flag or argument (exit 2).
 */
import { normalizeDomain } from "../auth/domain.ts";
import { parseDurationMs } from "../config/_units.ts";
import type { RecipientStatus } from "../queue/types.ts";
import {
  type Parsed,
  parseFlags,
  parseJsonOnly,
  parseSubcommand,
  type SubcommandParser,
  unexpected,
} from "./_args.ts";

/** Statuses `queue list --status` accepts (README.md "The queue"). */
export const LIST_STATUSES: readonly RecipientStatus[] = [
  "queued",
  "delivering",
  "failed",
  "expired",
];

export const QUEUE_SUBCOMMANDS = ["list", "show", "delete", "requeue", "summary"] as const;
export type QueueSubcommand = typeof QUEUE_SUBCOMMANDS[number];

export const QUEUE_USAGE = "Usage: queue list [--domain D] [--status S] [--older-than DUR] " +
  "[--json] | queue show ID [--json] [--body] | queue delete ID... | " +
  "queue delete --domain D [--yes] | queue requeue ID... | --domain D | --failed | " +
  "queue summary [--json]";

/** `queue list` filters. */
export interface ListFilter {
  readonly domain: string | undefined;
  /** Only recipients in these statuses; undefined: all. */
  readonly statuses: readonly RecipientStatus[] | undefined;
  /** Only messages received at least this long ago. */
  readonly olderThanMs: number | undefined;
}

export type QueueCommand =
  | { readonly kind: "list"; readonly filter: ListFilter; readonly isJson: boolean }
  | {
    readonly kind: "show";
    readonly id: string;
    readonly format: "text" | "json" | "body" | "json+body";
  }
  | {
    readonly kind: "delete";
    readonly ids: readonly string[];
    readonly domain: string | undefined;
    readonly isConfirmed: boolean;
  }
  | {
    readonly kind: "requeue";
    readonly target:
      | { readonly kind: "messages"; readonly ids: readonly string[] }
      | { readonly kind: "domain"; readonly domain: string }
      | { readonly kind: "all" };
  }
  | { readonly kind: "summary"; readonly isJson: boolean };

export type ParsedQueueCommand = Parsed<QueueCommand>;

/** Parses the arguments after `queue`. */
export function parseQueueCommand(argv: readonly string[]): ParsedQueueCommand {
  const parsers: Record<QueueSubcommand, SubcommandParser<QueueCommand>> = {
    list: parseList,
    show: parseShow,
    delete: parseDelete,
    requeue: parseRequeue,
    summary: (args) => parseJsonOnly("summary", args),
  };
  return parseSubcommand(argv, parsers, [...QUEUE_SUBCOMMANDS, "migrate"].join(", "));
}

function parseList(args: readonly string[]): ParsedQueueCommand {
  const { values, positionals } = parseFlags(args, {
    domain: { type: "string" },
    json: { type: "boolean" },
    status: { type: "string", multiple: true },
    "older-than": { type: "string" },
  });
  if (positionals.length > 0) return unexpected(positionals[0]);
  const domain = domainValue(values.domain);
  let statuses: RecipientStatus[] | undefined;
  const rawStatuses = values.status;
  if (Array.isArray(rawStatuses)) {
    statuses = [];
    for (const s of rawStatuses) {
      const status = LIST_STATUSES.find((known) => known === s);
      if (status === undefined) {
        return {
          ok: false,
          message: `Invalid value for --status: "${s}": expected ${LIST_STATUSES.join(", ")}`,
        };
      }
      statuses.push(status);
    }
  }
  const rawAge = values["older-than"];
  let olderThanMs: number | undefined;
  if (typeof rawAge === "string") {
    olderThanMs = parseDurationMs(rawAge);
    if (olderThanMs === undefined) {
      return {
        ok: false,
        message: `Invalid value for --older-than: "${rawAge}": expected a duration such as ` +
          "30m, 12h or 2d",
      };
    }
  }
  return {
    ok: true,
    command: {
      kind: "list",
      filter: { domain, statuses, olderThanMs },
      isJson: values.json === true,
    },
  };
}

function parseShow(args: readonly string[]): ParsedQueueCommand {
  const { values, positionals } = parseFlags(args, {
    json: { type: "boolean" },
    body: { type: "boolean" },
  });
  const [id, extra] = positionals;
  if (id === undefined) return { ok: false, message: "queue show needs a message ID" };
  if (extra !== undefined) return unexpected(extra);
  const format = values.json === true
    ? (values.body === true ? "json+body" : "json")
    : values.body === true
    ? "body"
    : "text";
  return { ok: true, command: { kind: "show", id, format } };
}

function parseDelete(args: readonly string[]): ParsedQueueCommand {
  const { values, positionals } = parseFlags(args, {
    domain: { type: "string" },
    yes: { type: "boolean" },
  });
  const domain = domainValue(values.domain);
  if (domain !== undefined && positionals.length > 0) {
    return { ok: false, message: "--domain cannot be combined with message IDs" };
  }
  if (domain === undefined && positionals.length === 0) {
    return { ok: false, message: "queue delete needs message IDs or --domain" };
  }
  return {
    ok: true,
    command: { kind: "delete", ids: positionals, domain, isConfirmed: values.yes === true },
  };
}

function parseRequeue(args: readonly string[]): ParsedQueueCommand {
  const { values, positionals } = parseFlags(args, {
    domain: { type: "string" },
    failed: { type: "boolean" },
  });
  const domain = domainValue(values.domain);
  const forms = (positionals.length > 0 ? 1 : 0) + (domain === undefined ? 0 : 1) +
    (values.failed === true ? 1 : 0);
  if (forms === 0) {
    return { ok: false, message: "queue requeue needs message IDs, --domain D or --failed" };
  }
  if (forms > 1) {
    return {
      ok: false,
      message: "queue requeue takes one of message IDs, --domain D or --failed, not several",
    };
  }
  const target = domain !== undefined
    ? { kind: "domain" as const, domain }
    : values.failed === true
    ? { kind: "all" as const }
    : { kind: "messages" as const, ids: positionals };
  return { ok: true, command: { kind: "requeue", target } };
}

/**
 * `--domain` in the stored form (lower-case A-label); a name that is no host name is matched as
 * typed. Throws on an empty one (a refusal, by `parseSubcommand`).
 */
function domainValue(value: unknown): string | undefined {
  if (typeof value !== "string") return undefined;
  const domain = normalizeDomain(value) ?? value.trim().toLowerCase();
  if (domain === "") throw new Error("--domain needs a domain name");
  return domain;
}
