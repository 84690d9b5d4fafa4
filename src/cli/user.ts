/**
 * `user add|passwd|domains|list|show|test|remove` (README.md): manage customers and the
 * domains they own. Works beside a running `serve` (WAL), which sees changes at once. Passwords
 * come from the first line of stdin (`--password-stdin`) or a no-echo TTY prompt; they are never
 * echoed, logged or stored. Exit codes: 0 ok, 1 runtime failure (unknown user, owned domain…),
 * 2 usage, 3 `user test`: the password does not match (or no such user).
 */
import { checkPassword } from "../auth/password_check.ts";
import { CredentialStore, type CredentialStoreOptions, UserError } from "../auth/store.ts";
import type { QueueAdmin } from "../queue/admin.ts";
import {
  openToolAdmin,
  openToolCredentials,
  storageWhere,
  type ToolCredentials,
} from "./_backend.ts";
import type { CliIo } from "./io.ts";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, usageError } from "./_args.ts";
import { type PasswordPrompt, readPassword } from "./_password_prompt.ts";
import { parseUserCommand, USER_USAGE, type UserCommand } from "./_user_args.ts";
import {
  gatherReports,
  renderUserTable,
  renderUserText,
  userDetailJson,
  userJson,
} from "./_user_report.ts";

export type { PasswordPrompt } from "./_password_prompt.ts";
import { userCertsCommand } from "./user_certs.ts";
import { mailOfChangedDomains } from "./_user_mail.ts";
import { errorText } from "../errors.ts";

/** `user test`: the password does not match (the same code as `fetch`'s failed AUTH). */
const EXIT_AUTH_FAILED = 3;

/** Test hooks: a fake prompt, cheap hashing costs and a clock. */
export interface UserCommandOptions {
  readonly promptPassword?: PasswordPrompt;
  readonly storeOptions?: CredentialStoreOptions;
  /** Milliseconds since the epoch (ages in `user list|show`). */
  readonly now?: () => number;
}

/** Runs `user SUBCOMMAND …` and returns the exit code. */
export async function userCommand(
  argv: readonly string[],
  io: CliIo,
  opts: UserCommandOptions = {},
): Promise<number> {
  if (argv[0] === "certs") return await userCertsCommand(argv.slice(1), io);
  const parsed = parseUserCommand(argv);
  if (!parsed.ok) return usageError(io, parsed.message, USER_USAGE);
  const cmd = parsed.command;
  let password = "";
  if (cmd.kind === "add" || cmd.kind === "passwd" || cmd.kind === "test") {
    const got = await readPassword(cmd.isPasswordStdin, io, {
      prompt: opts.promptPassword,
      isRepeated: cmd.kind !== "test",
    });
    if (!got.ok) {
      io.stderr(`error: ${got.message}\n`);
      return EXIT_USAGE;
    }
    password = got.password;
  }
  let users: ToolCredentials;
  try {
    users = await openToolCredentials(io.dataDir, io.storage, opts.storeOptions);
  } catch (err) {
    io.stderr(`error: ${errorText(err)}\n`);
    return EXIT_FAILURE;
  }
  try {
    if (cmd.kind === "test") {
      return await users.read((store) => testPassword(store, cmd.name, password, io));
    }
    if (cmd.kind === "list" || cmd.kind === "show") {
      return await users.read((store) => report(store, cmd, opts.now ?? Date.now, io));
    }
    // With PostgreSQL: one transaction holding the users locked, seen by every node at once.
    let owned: readonly string[] = [];
    let taken: readonly string[] = [];
    const code = await users.edit(async (store) => {
      const before = store.domainsOf(cmd.name);
      const done = await change(cmd, password, store, io);
      const after = store.domainsOf(cmd.name);
      if (cmd.kind === "add" || (cmd.kind === "domains" && cmd.add.length > 0)) owned = after;
      if (cmd.kind === "domains") taken = before.filter((d) => !after.includes(d));
      return done;
    });
    if (code !== EXIT_OK) return code;
    return await mailOfChangedDomains({ owned, taken }, io);
  } catch (err) {
    if (err instanceof UserError) {
      io.stderr(`error: ${err.message}\n`);
      return EXIT_FAILURE;
    }
    const where = await storageWhere(io.dataDir, io.storage);
    io.stderr(`error: Cannot use the users ${where}: ${errorText(err)}\n`);
    return EXIT_FAILURE;
  } finally {
    await users.close();
  }
}

async function change(
  cmd: Exclude<UserCommand, { kind: "list" | "show" | "test" }>,
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
      store.changeDomains(cmd.name, cmd.add, cmd.remove);
      io.stdout(`User "${cmd.name}" now owns ${describeDomains(store.domainsOf(cmd.name))}\n`);
      return EXIT_OK;
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

/** `user list` / `user show NAME`: the users with their waiting mail and last collection. */
async function report(
  store: CredentialStore,
  cmd: Extract<UserCommand, { kind: "list" | "show" }>,
  now: () => number,
  io: CliIo,
): Promise<number> {
  const all = store.listUsers();
  const users = cmd.kind === "show" ? all.filter((u) => u.name === cmd.name) : all;
  if (cmd.kind === "show" && users.length === 0) {
    throw new UserError(`User "${cmd.name}" does not exist`);
  }
  let admin: QueueAdmin;
  try {
    admin = await openToolAdmin(io.dataDir, io.storage);
  } catch (err) {
    io.stderr(`error: ${errorText(err)}\n`);
    return EXIT_FAILURE;
  }
  try {
    const reports = await gatherReports(admin, users, {
      perDomain: cmd.kind === "show",
      certificatesOf: (name) => store.certificates.fingerprintsOf(name),
    });
    const nowMs = now();
    if (cmd.kind === "list") {
      io.stdout(
        cmd.isJson ? JSON.stringify(reports.map(userJson)) + "\n" : renderUserTable(reports, nowMs),
      );
    } else {
      const [r] = reports;
      if (r === undefined) return EXIT_FAILURE; // filtered above: there is exactly one
      io.stdout(
        cmd.isJson ? JSON.stringify(userDetailJson(r), null, 2) + "\n" : renderUserText(r, nowMs),
      );
    }
    return EXIT_OK;
  } finally {
    await admin.close();
  }
}

/**
 * `user test NAME`: every stored verifier must accept the password (like `doveadm auth test`);
 * verifiers that disagree are named, since some mechanisms would then fail and others not.
 */
async function testPassword(
  store: CredentialStore,
  name: string,
  password: string,
  io: CliIo,
): Promise<number> {
  const stored = store.getVerifiers(name);
  if (stored === undefined) {
    io.stderr(`error: User "${name}" does not exist\n`);
    return EXIT_AUTH_FAILED;
  }
  const checks = await checkPassword(stored, password);
  if (checks.length === 0) {
    io.stderr(`error: User "${name}" has no stored password: set one with "user passwd"\n`);
    return EXIT_AUTH_FAILED;
  }
  const matched = checks.filter((c) => c.matches).map((c) => c.verifier);
  const failed = checks.filter((c) => !c.matches).map((c) => c.verifier);
  if (failed.length === 0) {
    io.stdout(`Password of user "${name}" matches (${matched.join(", ")})\n`);
    return EXIT_OK;
  }
  if (matched.length === 0) {
    io.stderr(`error: Password of user "${name}" does not match\n`);
  } else {
    io.stderr(
      `error: Password of user "${name}" matches ${matched.join(", ")} but not ` +
        `${failed.join(", ")}: the stored verifiers disagree; set it again with "user passwd"\n`,
    );
  }
  return EXIT_AUTH_FAILED;
}

function describeDomains(domains: readonly string[]): string {
  return domains.length === 0 ? "no domains" : `domains ${domains.join(", ")}`;
}
