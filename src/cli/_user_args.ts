/**
 * Parses `user SUBCOMMAND …` arguments into one typed command (README.md "Commands").
 * Pure: no database, no prompt. Every refusal names the flag or argument (exit 2).
 */
import { type Parsed, parseFlags, parseJsonOnly, parseSubcommand, type Refusal } from "./_args.ts";
import { normalizeDomain } from "../auth/domain.ts";
import { isValidUserName } from "../auth/store.ts";

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

export type ParsedUserCommand = Parsed<UserCommand>;

/** Parses the arguments after `user`. */
export function parseUserCommand(argv: readonly string[]): ParsedUserCommand {
  return parseSubcommand<UserCommand>(argv, {
    add: parseAdd,
    passwd: (args) => parseNameAndPassword("passwd", args),
    domains: parseDomains,
    list: (args) => parseJsonOnly("list", args),
    show: parseShow,
    test: (args) => parseNameAndPassword("test", args),
    remove: (args) => {
      const name = oneName("remove", parseFlags(args, {}).positionals);
      return name.ok ? { ok: true, command: { kind: "remove", name: name.value } } : name;
    },
  }, SUBCOMMANDS);
}

function parseAdd(args: readonly string[]): ParsedUserCommand {
  const { values, positionals } = parseFlags(args, {
    domain: { type: "string", multiple: true },
    "password-stdin": { type: "boolean" },
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

/** `user passwd NAME` and `user test NAME`: a name and where the password comes from. */
function parseNameAndPassword(kind: "passwd" | "test", args: readonly string[]): ParsedUserCommand {
  const { values, positionals } = parseFlags(args, { "password-stdin": { type: "boolean" } });
  const name = oneName(kind, positionals);
  if (!name.ok) return name;
  return {
    ok: true,
    command: { kind, name: name.value, isPasswordStdin: values["password-stdin"] ?? false },
  };
}

function parseDomains(args: readonly string[]): ParsedUserCommand {
  const { values, positionals } = parseFlags(args, {
    add: { type: "string", multiple: true },
    remove: { type: "string", multiple: true },
  });
  const name = oneName("domains", positionals);
  if (!name.ok) return name;
  const add = values.add ?? [];
  const remove = values.remove ?? [];
  const bad = checkDomains("--add", add) ?? checkDomains("--remove", remove);
  if (bad !== undefined) return bad;
  return { ok: true, command: { kind: "domains", name: name.value, add, remove } };
}

function parseShow(args: readonly string[]): ParsedUserCommand {
  const { values, positionals } = parseFlags(args, { json: { type: "boolean" } });
  const name = oneName("show", positionals);
  if (!name.ok) return name;
  return { ok: true, command: { kind: "show", name: name.value, isJson: values.json ?? false } };
}

function oneName(
  sub: string,
  positionals: readonly string[],
): { ok: true; value: string } | Refusal {
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

function checkDomains(flag: string, domains: readonly string[]): Refusal | undefined {
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
