/**
 * The signature primitive of src/dkim/signer.ts through WebCrypto, which Deno computes on a
 * blocking-task thread: an RSA-2048 signature (about 3 ms) no longer stops the event loop, so
 * the sessions of serve go on while outbound mail is signed. tests/dkim/signer_test.ts has
 * python3-dkim verify what it signs, for both algorithms and every canonicalization.
 */
import type crypto from "node:crypto";

/** signer.ts's DkimAlgorithm (not imported from it: signer.ts imports this module). */
type Algorithm = "rsa-sha256" | "ed25519-sha256";

/** WebCrypto's copy of each private key, imported once (keys are read once per batch). */
const imported = new WeakMap<crypto.KeyObject, Promise<CryptoKey>>();

function cryptoKeyOf(key: crypto.KeyObject, algorithm: Algorithm): Promise<CryptoKey> {
  let found = imported.get(key);
  if (found === undefined) {
    const der = key.export({ format: "der", type: "pkcs8" });
    found = globalThis.crypto.subtle.importKey(
      "pkcs8",
      new Uint8Array(der),
      algorithm === "rsa-sha256"
        ? { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }
        : { name: "Ed25519" },
      false,
      ["sign"],
    );
    imported.set(key, found);
  }
  return found;
}

/**
 * Signs `data` (signer.ts's bytesToSign): rsa-sha256 over the data itself (SHA-256 inside),
 * ed25519-sha256 over the SHA-256 digest the caller passes.
 */
export async function signOffThread(
  algorithm: Algorithm,
  key: crypto.KeyObject,
  data: Uint8Array,
): Promise<Uint8Array> {
  const cryptoKey = await cryptoKeyOf(key, algorithm);
  const name = algorithm === "rsa-sha256" ? "RSASSA-PKCS1-v1_5" : "Ed25519";
  // Never a SharedArrayBuffer here (concatBytes and createHash make plain ones).
  const bytes = data as Uint8Array<ArrayBuffer>;
  return new Uint8Array(await globalThis.crypto.subtle.sign(name, cryptoKey, bytes));
}
