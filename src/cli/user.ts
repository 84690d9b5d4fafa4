/**
 * `user add|passwd|domains|list|remove` (README.md): manage customers and the domains they
 * own. Works beside a running `serve` (WAL), which sees changes at once. Passwords come from
 * the first line of stdin (`--password-stdin`) or a no-echo TTY prompt; they are never echoed,
 * logged or stored. Exit codes: 0 ok, 1 runtime failure (unknown user, owned domain…), 2 usage.
 */
import { parseArgs } from "node:util";
import { normalizeDomain } from "../auth/domain.ts";
import {
  CredentialStore,
  type CredentialStoreOptions,
  isValidUserName,
  UserError,
} from "../auth/store.ts";
import type { CliIo } from "./io.ts";

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

const USAGE = "Usage: user add NAME --domain D [--domain D...] [--password-stdin] | " +
  "user passwd NAME [--password-stdin] | user domains NAME [--add D...] [--remove D...] | " +
  "user list [--json] | user remove NAME";

/** Reads a password from the terminal without echo; null when the user aborts (Ctrl-C/D). */
export type PasswordPrompt = (prompt: string) => Promise<string | null>;

/** Test hooks: a fake prompt and cheap hashing costs. */
export interface UserCommandOptions {
  readonly promptPassword?: PasswordPrompt;
  readonly storeOptions?: CredentialStoreOptions;
}

type UserCommand =
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
  | { readonly kind: "remove"; readonly name: string };

type Parsed = { ok: true; command: UserCommand } | { ok: false; message: string };

/** Runs `user SUBCOMMAND …` and returns the exit code. */
export async function userCommand(
  argv: readonly string[],
  io: CliIo,
  opts: UserCommandOptions = {},
): Promise<number> {
  const parsed = parseCommand(argv);
  if (!parsed.ok) {
    io.stderr(`error: ${parsed.message}\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  const cmd = parsed.command;
  let password: string | undefined;
  if (cmd.kind === "add" || cmd.kind === "passwd") {
    const got = await readPassword(cmd.isPasswordStdin, io, opts.promptPassword);
    if (!got.ok) {
      io.stderr(`error: ${got.message}\n`);
      return EXIT_USAGE;
    }
    password = got.password;
  }
  let store: CredentialStore;
  try {
    store = CredentialStore.open(io.dataDir, opts.storeOptions);
  } catch (err) {
    io.stderr(`error: ${errorText(err)}\n`);
    return EXIT_FAILURE;
  }
  try {
    return await run(cmd, password ?? "", store, io);
  } catch (err) {
    if (err instanceof UserError) {
      io.stderr(`error: ${err.message}\n`);
      return EXIT_FAILURE;
    }
    io.stderr(`error: Cannot update users in "${io.dataDir}": ${errorText(err)}\n`);
    return EXIT_FAILURE;
  } finally {
    store.close();
  }
}

async function run(
  cmd: UserCommand,
  password: string,
  store: CredentialStore,
  io: CliIo,
): Promise<number> {
  switch (cmd.kind) {
    case "add":
      await store.addUser(cmd.name, password, cmd.domains);
      io.stdout(`Added user "${cmd.name}" with ${describeDomains(store.domainsOf(cmd.name))}\n`);
      return EXIT_OK;
    case "passwd":
      await store.setPassword(cmd.name, password);
      io.stdout(`Changed the password of user "${cmd.name}"\n`);
      return EXIT_OK;
    case "domains":
      if (!store.hasUser(cmd.name)) throw new UserError(`User "${cmd.name}" does not exist`);
      if (cmd.add.length === 0 && cmd.remove.length === 0) {
        for (const d of store.domainsOf(cmd.name)) io.stdout(`${d}\n`);
        return EXIT_OK;
      }
      if (cmd.add.length > 0) store.addDomains(cmd.name, cmd.add);
      if (cmd.remove.length > 0) store.removeDomains(cmd.name, cmd.remove);
      io.stdout(`User "${cmd.name}" now owns ${describeDomains(store.domainsOf(cmd.name))}\n`);
      return EXIT_OK;
    case "list": {
      const users = store.listUsers();
      if (cmd.isJson) {
        io.stdout(JSON.stringify(users.map((u) => ({ name: u.name, domains: u.domains }))) + "\n");
      } else {
        for (const u of users) io.stdout(`${u.name}\t${u.domains.join(" ")}\n`);
      }
      return EXIT_OK;
    }
    case "remove":
      store.removeUser(cmd.name);
      io.stdout(`Removed user "${cmd.name}"; mail queued for its domains stays until expiry\n`);
      return EXIT_OK;
    default: {
      const never: never = cmd;
      return never;
    }
  }
}

function describeDomains(domains: readonly string[]): string {
  return domains.length === 0 ? "no domains" : `domains ${domains.join(", ")}`;
}

function parseCommand(argv: readonly string[]): Parsed {
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
        const { values, positionals } = parseArgs({
          args,
          options: { json: { type: "boolean" } },
          strict: true,
          allowPositionals: true,
        });
        if (positionals.length > 0) {
          return { ok: false, message: `Unexpected argument "${positionals[0]}"` };
        }
        return { ok: true, command: { kind: "list", isJson: values.json ?? false } };
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
      case undefined:
        return {
          ok: false,
          message: "Missing subcommand: expected add, passwd, domains, list or remove",
        };
      default:
        return {
          ok: false,
          message: `Unknown subcommand "${sub}": expected add, passwd, domains, list or remove`,
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

function checkDomains(flag: string, domains: readonly string[]): Parsed | undefined {
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

async function readPassword(
  isPasswordStdin: boolean,
  io: CliIo,
  prompt: PasswordPrompt | undefined,
): Promise<{ ok: true; password: string } | { ok: false; message: string }> {
  if (isPasswordStdin) {
    const line = await io.readStdinLine();
    if (line === null || line === "") {
      return { ok: false, message: "Empty password: --password-stdin read an empty first line" };
    }
    return { ok: true, password: line };
  }
  if (prompt === undefined && !io.isTty) {
    return {
      ok: false,
      message: "Cannot prompt for a password: stdin is not a terminal; use --password-stdin",
    };
  }
  const ask = prompt ?? ((text: string) => promptWithoutEcho(text, io));
  const first = await ask("Password: ");
  if (first === null) return { ok: false, message: "Password entry aborted" };
  if (first === "") return { ok: false, message: "Empty password: a password is required" };
  const second = await ask("Repeat password: ");
  if (second !== first) return { ok: false, message: "Passwords do not match" };
  return { ok: true, password: first };
}

/** Reads one line from the terminal in raw mode, so nothing is echoed. */
async function promptWithoutEcho(text: string, io: CliIo): Promise<string | null> {
  io.stderr(text);
  const bytes: number[] = [];
  const chunk = new Uint8Array(64);
  Deno.stdin.setRaw(true);
  try {
    for (;;) {
      const n = await Deno.stdin.read(chunk);
      if (n === null) return null;
      for (const b of chunk.subarray(0, n)) {
        if (b === 0x0d || b === 0x0a) return new TextDecoder().decode(Uint8Array.from(bytes));
        if (b === 0x03 || b === 0x04) return null; // Ctrl-C, Ctrl-D
        if (b === 0x7f || b === 0x08) popCharacter(bytes);
        else bytes.push(b);
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    bytes.fill(0);
    io.stderr("\n");
  }
}

/** Backspace removes one UTF-8 character: its continuation bytes, then its lead byte. */
function popCharacter(bytes: number[]): void {
  while (bytes.length > 0 && ((bytes[bytes.length - 1] ?? 0) & 0xc0) === 0x80) bytes.pop();
  bytes.pop();
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
