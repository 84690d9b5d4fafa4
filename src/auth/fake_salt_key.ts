/**
 * The key that derives SCRAM salts for unknown user names (src/auth/sasl_server.ts). Kept in
 * `data_dir` (mode 0600) so that an unknown name gets the same salt before and after a
 * restart, as a real user does: a salt that changed at restart would tell which names exist.
 * Created on first use; never logged.
 */
import { randomBytes } from "./node_crypto.ts";

/** File name inside `data_dir`. */
export const FAKE_SALT_KEY_FILE = "scram_fake_salt.key";
/** Key length in bytes. */
export const FAKE_SALT_KEY_BYTES = 32;

/** Reads the key from `dataDir`, creating it (0600) when absent; throws when unusable. */
export function loadFakeSaltKey(dataDir: string): Uint8Array {
  const path = `${dataDir}/${FAKE_SALT_KEY_FILE}`;
  try {
    Deno.writeFileSync(path, randomBytes(FAKE_SALT_KEY_BYTES), {
      createNew: true,
      mode: 0o600,
    });
  } catch (err) {
    // Already there (an earlier start, or another process won the race): use that one.
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
  }
  const key = Deno.readFileSync(path);
  if (key.length !== FAKE_SALT_KEY_BYTES) {
    throw new Error(
      `"${path}" must hold ${FAKE_SALT_KEY_BYTES} bytes: current size is ${key.length} ` +
        `(remove it and a new one is made at the next start)`,
    );
  }
  return key;
}
