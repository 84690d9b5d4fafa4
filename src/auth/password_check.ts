/**
 * Checks a password against each stored verifier of one user (`user test`, like `doveadm auth
 * test`): SCRAM-SHA-256 keys, the CRAM-MD5 midstates and the scrypt hash are each recomputed
 * from the password and compared in constant time. Reports per verifier, so a store whose
 * verifiers disagree (a half-applied change) shows up instead of passing on the first match.
 */
import { constantTimeEqual } from "./_bytes.ts";
import { isCramPassword } from "./cram_md5.ts";
import { verifyPassword } from "./password_hash.ts";
import { keysFromSaltedPassword, saltPassword } from "./scram.ts";
import { loadNodeCrypto } from "./node_crypto.ts";
import type { StoredVerifiers } from "./store.ts";

/** The mechanisms a stored verifier serves. */
export type VerifierName = "SCRAM-SHA-256" | "CRAM-MD5" | "PLAIN/LOGIN";

/** Whether the password matches one stored verifier. */
export interface VerifierCheck {
  readonly verifier: VerifierName;
  readonly matches: boolean;
}

/** Checks `password` against every verifier present in `stored` (absent ones are not listed). */
export async function checkPassword(
  stored: StoredVerifiers,
  password: string,
): Promise<VerifierCheck[]> {
  const out: VerifierCheck[] = [];
  // Before the try below: its catch would take a missing node:crypto for a refused password.
  await loadNodeCrypto();
  const scram = stored.scramSha256;
  if (scram !== undefined) {
    let matches = false;
    try {
      const keys = keysFromSaltedPassword(
        await saltPassword(password, scram.salt, scram.iterations),
      );
      matches = constantTimeEqual(keys.storedKey, scram.storedKey) &&
        constantTimeEqual(keys.serverKey, scram.serverKey);
    } catch {
      // SASLprep refused the password: no SCRAM login can succeed with it.
    }
    out.push({ verifier: "SCRAM-SHA-256", matches });
  }
  if (stored.cramMd5 !== undefined) {
    out.push({ verifier: "CRAM-MD5", matches: isCramPassword(stored.cramMd5, password) });
  }
  if (stored.passwordHash !== undefined) {
    out.push({
      verifier: "PLAIN/LOGIN",
      matches: await verifyPassword(password, stored.passwordHash),
    });
  }
  return out;
}
