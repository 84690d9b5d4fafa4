/**
 * Parses `user SUBCOMMAND …` arguments into one typed command (README.md "Commands").
 * Pure: no database, no prompt. Every refusal names the flag or argument (exit 2).
 */
import { parseArgs } from "node:util";
import { parseListArgs } from "./_list_args.ts";
import { normalizeDomain } from "../auth/domain.ts";
import { isValidUserName } from "../auth/store.ts";
import { errorText } from "../errors.ts";

export const USER_USAGE = "Usage: user add NAME --domain D [--domain D...] [--password-stdin] | " +
  "user passwd NAME [--password-stdin] | user domains NAME [--add D...] [--remove D...] | " +
  "user list [--json] | user show NAME [--json] | user test NAME [--password-stdin] | " +
  "user remove NAME | user certs NAME [--add FILE] [--remove FINGERPRINT]";

const SUBCOMMANDS = "add, passwd, domains, list, show, test or remove";

export type UserCommand =
  | {
    readonly kind: "add";
    readonly name: string;
    readonly domains: readonly string[];
    readonly isPasswordStdin: boolean;
  }
  | { readonly kind: "passwd"; readonly name: string; readonly isPasswordStdin: boolean }
  | {
    readonly kind: "domains";
    readonly name: string;
    readonly add: readonly string[];
    readonly remove: readonly string[];
  }
  | { readonly kind: "list"; readonly isJson: boolean }
  | { readonly kind: "show"; readonly name: string; readonly isJson: boolean }
  | { readonly kind: "test"; readonly name: string; readonly isPasswordStdin: boolean }
  | { readonly kind: "remove"; readonly name: string };

export type ParsedUserCommand = { ok: true; command: UserCommand } | { ok: false; message: string };

/** Parses the arguments after `user`. */
export function parseUserCommand(argv: readonly string[]): ParsedUserCommand {
  const [sub, ...args] = argv;
  try {
    switch (sub) {
      case "add": {
        const { values, positionals } = parseArgs({
          args,
          options: {
            domain: { type: "string", multiple: true },
            "password-stdin": { type: "boolean" },
          },
          strict: true,
          allowPositionals: true,
        });
        const name = oneName("add", positionals);
        if (!name.ok) return name;
        const domains = values.domain ?? [];
        if (domains.length === 0) {
          return { ok: false, message: "Missing --domain: user add needs at least one domain" };
        }
        const bad = checkDomains("--domain", domains);
        if (bad !== undefined) return bad;
        return {
          ok: true,
          command: {
            kind: "add",
            name: name.value,
            domains,
            isPasswordStdin: values["password-stdin"] ?? false,
          },
        };
      }
      case "passwd": {
        const { values, positionals } = parseArgs({
          args,
          options: { "password-stdin": { type: "boolean" } },
          strict: true,
          allowPositionals: true,
        });
        const name = oneName("passwd", positionals);
        if (!name.ok) return name;
        return {
          ok: true,
          command: {
            kind: "passwd",
            name: name.value,
            isPasswordStdin: values["password-stdin"] ?? false,
          },
        };
      }
      case "domains": {
        const { values, positionals } = parseArgs({
          args,
          options: {
            add: { type: "string", multiple: true },
            remove: { type: "string", multiple: true },
          },
          strict: true,
          allowPositionals: true,
        });
        const name = oneName("domains", positionals);
        if (!name.ok) return name;
        const add = values.add ?? [];
        const remove = values.remove ?? [];
        const bad = checkDomains("--add", add) ?? checkDomains("--remove", remove);
        if (bad !== undefined) return bad;
        return { ok: true, command: { kind: "domains", name: name.value, add, remove } };
      }
      case "list": {
        const parsed = parseListArgs(args);
        if (!parsed.ok) return parsed;
        return { ok: true, command: { kind: "list", isJson: parsed.isJson } };
      }
      case "remove": {
        const { positionals } = parseArgs({
          args,
          options: {},
          strict: true,
          allowPositionals: true,
        });
        const name = oneName("remove", positionals);
        if (!name.ok) return name;
        return { ok: true, command: { kind: "remove", name: name.value } };
      }
      case "show": {
        const { values, positionals } = parseArgs({
          args,
          options: { json: { type: "boolean" } },
          strict: true,
          allowPositionals: true,
        });
        const name = oneName("show", positionals);
        if (!name.ok) return name;
        return {
          ok: true,
          command: { kind: "show", name: name.value, isJson: values.json ?? false },
        };
      }
      case "test": {
        const { values, positionals } = parseArgs({
          args,
          options: { "password-stdin": { type: "boolean" } },
          strict: true,
          allowPositionals: true,
        });
        const name = oneName("test", positionals);
        if (!name.ok) return name;
        return {
          ok: true,
          command: {
            kind: "test",
            name: name.value,
            isPasswordStdin: values["password-stdin"] ?? false,
          },
        };
      }
      case undefined:
        return {
          ok: false,
          message: `Missing subcommand: expected ${SUBCOMMANDS}`,
        };
      default:
        return {
          ok: false,
          message: `Unknown subcommand "${sub}": expected ${SUBCOMMANDS}`,
        };
    }
  } catch (err) {
    // parseArgs names the offending flag ("Unknown option '--foo'").
    return { ok: false, message: errorText(err) };
  }
}

function oneName(
  sub: string,
  positionals: readonly string[],
): { ok: true; value: string } | { ok: false; message: string } {
  const [name, extra] = positionals;
  if (name === undefined) {
    return { ok: false, message: `Missing NAME: user ${sub} needs a user name` };
  }
  if (extra !== undefined) return { ok: false, message: `Unexpected argument "${extra}"` };
  if (!isValidUserName(name)) {
    return {
      ok: false,
      message: `Invalid user name "${name}": use 1-64 characters of letters, digits and . _ @ + -`,
    };
  }
  return { ok: true, value: name };
}

function checkDomains(flag: string, domains: readonly string[]): ParsedUserCommand | undefined {
  for (const d of domains) {
    if (normalizeDomain(d) === undefined) {
      return {
        ok: false,
        message: `Invalid value for ${flag}: "${d}" is not a domain name with at least two labels`,
      };
    }
  }
  return undefined;
}
