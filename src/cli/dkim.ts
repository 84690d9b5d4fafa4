/**
 * `dkim keygen|list|remove` (README.md "Commands"): the outbound signing keys, in `data_dir/dkim/`
 * or, with `queue.backend: postgres`, in the database every node shares.
 * `keygen` prints the TXT record to publish. Private keys are never printed. Exit codes: 0 ok,
 * 1 runtime failure (key exists, no such key, unreadable data dir), 2 usage.
 */
import {
  EXIT_FAILURE,
  EXIT_OK,
  type Parsed,
  parseFlags,
  parseJsonOnly,
  parseSubcommand,
  type Refusal,
  usageError,
} from "./_args.ts";
import { normalizeDomain } from "../auth/domain.ts";
import { openToolDkimKeys } from "./_backend.ts";
import {
  defaultSelector,
  type DkimKeys,
  type KeyEntry,
  KeyStoreError,
  type KeyType,
  normalizeSelector,
  zoneLine,
} from "../dkim/keys.ts";
import type { CliIo } from "./io.ts";
import { errorText } from "../errors.ts";

const USAGE = "Usage: dkim keygen DOMAIN [--selector S] [--algorithm rsa|ed25519] | " +
  "dkim list [--json] | dkim remove DOMAIN SELECTOR";

type DkimCommand =
  | {
    readonly kind: "keygen";
    readonly domain: string;
    readonly selector: string | undefined;
    readonly type: KeyType;
  }
  | { readonly kind: "list"; readonly isJson: boolean }
  | { readonly kind: "remove"; readonly domain: string; readonly selector: string };

/** Test hook: the clock that names default selectors. */
export interface DkimCommandOptions {
  readonly now?: () => Date;
}

/** Runs `dkim SUBCOMMAND …` and returns the exit code. */
export async function dkimCommand(
  argv: readonly string[],
  io: CliIo,
  opts: DkimCommandOptions = {},
): Promise<number> {
  const parsed = parseCommand(argv);
  if (!parsed.ok) return usageError(io, parsed.message, USAGE);
  try {
    const store = await openToolDkimKeys(io.dataDir, io.storage);
    try {
      return await run(parsed.command, store.keys, io, opts.now ?? (() => new Date()));
    } finally {
      await store.close();
    }
  } catch (err) {
    if (err instanceof KeyStoreError) {
      io.stderr(`error: ${err.message}\n`);
      return EXIT_FAILURE;
    }
    const detail = errorText(err);
    const pg = io.storage?.backend === "postgres" ? io.storage.postgres : undefined;
    // import(): postgres.js is loaded only where the database is configured.
    const where = pg === undefined
      ? `"${io.dataDir}"`
      : `the database ${(await import("../queue/pg/connect.ts")).describeUrl(pg.url)}`;
    io.stderr(`error: Cannot manage DKIM keys in ${where}: ${detail}\n`);
    return EXIT_FAILURE;
  }
}

async function run(
  cmd: DkimCommand,
  store: DkimKeys,
  io: CliIo,
  now: () => Date,
): Promise<number> {
  switch (cmd.kind) {
    case "keygen": {
      const selector = cmd.selector ?? defaultSelector(cmd.type, now());
      const entry = await store.generate(cmd.domain, selector, cmd.type);
      io.stdout(
        `Generated ${describe(entry)}; mail from ${entry.domain} is signed with it from now on.\n` +
          `Publish this TXT record (DNS name ${entry.dnsName}):\n\n${zoneLine(entry)}\n`,
      );
      return EXIT_OK;
    }
    case "list": {
      const entries = await store.list();
      if (cmd.isJson) {
        io.stdout(JSON.stringify(entries.map(toJson)) + "\n");
        return EXIT_OK;
      }
      if (entries.length === 0) {
        io.stdout(`No DKIM keys. Create one with: dkim keygen DOMAIN\n`);
        return EXIT_OK;
      }
      // One line per key, tab-separated, the JSON's fields in its order (the TXT value unsplit:
      // `keygen` prints the zone-file form).
      for (const e of entries) io.stdout(Object.values(toJson(e)).join("\t") + "\n");
      return EXIT_OK;
    }
    case "remove": {
      if (!(await store.remove(cmd.domain, cmd.selector))) {
        io.stderr(`error: No DKIM key for "${cmd.domain}" with selector "${cmd.selector}"\n`);
        return EXIT_FAILURE;
      }
      io.stdout(
        `Removed the key "${cmd.selector}" of ${cmd.domain}; ` +
          `its TXT record ${cmd.selector}._domainkey.${cmd.domain} can go once mail signed ` +
          `with it has been read\n`,
      );
      return EXIT_OK;
    }
    default: {
      const never: never = cmd;
      return never;
    }
  }
}

function describe(e: KeyEntry): string {
  return `a${e.type === "rsa" ? "n RSA 2048-bit" : "n Ed25519"} key for ${e.domain}, ` +
    `selector "${e.selector}"`;
}

function toJson(e: KeyEntry) {
  return {
    domain: e.domain,
    selector: e.selector,
    algorithm: e.type,
    created_at: e.createdAt.toISOString(),
    dns_name: e.dnsName,
    dns_txt: e.dnsText,
  };
}

function parseCommand(argv: readonly string[]): Parsed<DkimCommand> {
  return parseSubcommand<DkimCommand>(argv, {
    keygen: parseKeygen,
    list: (args) => parseJsonOnly("list", args),
    remove: parseRemove,
  }, "keygen, list or remove");
}

function parseKeygen(args: readonly string[]): Parsed<DkimCommand> {
  const { values, positionals } = parseFlags(args, {
    selector: { type: "string" },
    algorithm: { type: "string" },
  });
  const domain = oneDomain(positionals, 1);
  if (!domain.ok) return domain;
  const algorithm = values.algorithm ?? "rsa";
  if (algorithm !== "rsa" && algorithm !== "ed25519") {
    return {
      ok: false,
      message: `Invalid value for --algorithm: "${algorithm}": expected rsa or ed25519`,
    };
  }
  if (values.selector !== undefined && normalizeSelector(values.selector) === undefined) {
    return {
      ok: false,
      message: `Invalid value for --selector: "${values.selector}" is not a DNS label`,
    };
  }
  return {
    ok: true,
    command: { kind: "keygen", domain: domain.value, selector: values.selector, type: algorithm },
  };
}

function parseRemove(args: readonly string[]): Parsed<DkimCommand> {
  const { positionals } = parseFlags(args, {});
  const domain = oneDomain(positionals, 2);
  if (!domain.ok) return domain;
  const selector = positionals[1];
  if (selector === undefined) return { ok: false, message: "Missing SELECTOR" };
  const normalized = normalizeSelector(selector);
  if (normalized === undefined) {
    return { ok: false, message: `Invalid selector "${selector}": not a DNS label` };
  }
  return { ok: true, command: { kind: "remove", domain: domain.value, selector: normalized } };
}

function oneDomain(
  positionals: readonly string[],
  expected: number,
): { ok: true; value: string } | Refusal {
  const [raw] = positionals;
  if (raw === undefined) return { ok: false, message: "Missing DOMAIN" };
  const extra = positionals[expected];
  if (extra !== undefined) return { ok: false, message: `Unexpected argument "${extra}"` };
  const domain = normalizeDomain(raw);
  if (domain === undefined) {
    return {
      ok: false,
      message: `Invalid domain "${raw}": expected a domain name with at least two labels`,
    };
  }
  return { ok: true, value: domain };
}
