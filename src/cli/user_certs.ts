/**
 * `user certs NAME [--add FILE] [--remove FINGERPRINT]` (README.md "Commands"): the client certificates
 * pinned for a user's AUTH EXTERNAL. Without flags it lists the SHA-256 fingerprints; `--add`
 * pins the certificate in a PEM file and prints its fingerprint. Exit codes as `user`: 0 ok,
 * 1 refused (unknown user, fingerprint pinned for another user, unreadable file), 2 usage.
 */
import { readNamedTextFile } from "../named_file.ts";
import { fingerprintOfPem, normalizeFingerprint, PinError } from "../auth/cert_pins.ts";
import { loadNodeCrypto } from "../auth/node_crypto.ts";
import { type CredentialStore, UserError } from "../auth/store.ts";
import { openToolCredentials, type ToolCredentials } from "./_backend.ts";
import type { CliIo } from "./io.ts";
import { parseFlags, usageError } from "./_args.ts";
import { errorText } from "../errors.ts";

const USAGE = "Usage: user certs NAME [--add FILE] [--remove FINGERPRINT]";

/** Runs `user certs …` (argv after `certs`) and returns the exit code. */
export async function userCertsCommand(argv: readonly string[], io: CliIo): Promise<number> {
  let name: string;
  let add: string | undefined;
  let remove: string | undefined;
  try {
    const { values, positionals } = parseFlags(argv, {
      add: { type: "string" },
      remove: { type: "string" },
    });
    if (positionals.length !== 1) throw new Error("user certs needs exactly one user NAME");
    name = positionals[0] as string;
    add = values.add;
    remove = values.remove;
    if (remove !== undefined && normalizeFingerprint(remove) === undefined) {
      throw new Error(`Invalid value for --remove: "${remove}" is not a SHA-256 fingerprint`);
    }
  } catch (err) {
    return usageError(io, errorText(err), USAGE);
  }
  let pem: string | undefined;
  if (add !== undefined) {
    try {
      pem = await readNamedTextFile(add);
    } catch (err) {
      io.stderr(`error: Cannot read "${add}": ${errorText(err)}\n`);
      return 1;
    }
    await loadNodeCrypto(); // fingerprintOfPem's X.509 parse
  }
  let users: ToolCredentials;
  try {
    // With PostgreSQL the pins live with the users in the database, seen by every node.
    users = await openToolCredentials(io.dataDir, io.storage);
  } catch (err) {
    io.stderr(`error: ${errorText(err)}\n`);
    return 1;
  }
  try {
    const isListing = add === undefined && remove === undefined;
    const body = (store: CredentialStore): Promise<number> => {
      if (!store.hasUser(name)) throw new UserError(`User "${name}" does not exist`);
      const pins = store.certificates;
      const fp = add !== undefined && pem !== undefined ? fingerprintOfPem(pem, add) : undefined;
      // Both in one transaction: a refused part changes nothing.
      if (fp !== undefined || remove !== undefined) {
        pins.change(name, {
          ...(fp === undefined ? {} : { pin: fp }),
          ...(remove === undefined ? {} : { unpin: remove }),
        });
      }
      if (fp !== undefined) io.stdout(`Pinned certificate ${fp} for user "${name}"\n`);
      if (remove !== undefined) {
        io.stdout(`Removed certificate ${remove} from user "${name}"\n`);
      }
      if (add === undefined && remove === undefined) {
        for (const fp of pins.fingerprintsOf(name)) io.stdout(`${fp}\n`);
      }
      return Promise.resolve(0);
    };
    return await (isListing ? users.read(body) : users.edit(body));
  } catch (err) {
    if (err instanceof UserError || err instanceof PinError) {
      io.stderr(`error: ${err.message}\n`);
      return 1;
    }
    io.stderr(`error: Cannot update users in "${io.dataDir}": ${String(err)}\n`);
    return 1;
  } finally {
    await users.close();
  }
}
