/**
 * Base64 for SASL exchanges and stored verifiers (RFC 4648 §4, standard alphabet, padding
 * required). Pure; malformed input is `undefined`, never a throw.
 */

/** Base64 of bytes. */
export function encodeBase64(data: Uint8Array): string {
  let bin = "";
  for (const b of data) bin += String.fromCharCode(b);
  return btoa(bin);
}

/** Strict base64 to bytes: `undefined` when malformed (RFC 4954 §4: answer 501). */
export function decodeBase64(text: string): Uint8Array | undefined {
  if (text.length % 4 !== 0 || !/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return undefined;
  try {
    const bin = atob(text);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out;
  } catch {
    return undefined;
  }
}
