/**
 * node:crypto, loaded when first needed instead of at start-up (issue 13, idle memory): an idle
 * `serve` without a `tls` section never evaluates Deno's crypto polyfill and the stream and
 * process modules it brings (about 1 MB resident, measured). It is built into Deno, so loading
 * it later reads nothing from the checkout; our own modules still load at start-up
 * (tests/cli/lazy_imports_test.ts). Random bytes come from WebCrypto, which is always there.
 *
 * Asynchronous code awaits `loadNodeCrypto()`. The synchronous computations (SCRAM's HMACs, the
 * DKIM body hash, X.509 and key parsing) take `nodeCrypto()`, which throws until a load has
 * finished: each of their asynchronous entry points (an AUTH exchange, a password check, a DKIM
 * key read or signature, the commands that parse certificates) loads it first.
 */
import type * as NodeCrypto from "node:crypto";

/** The node:crypto module. */
export type NodeCryptoModule = typeof NodeCrypto;

let loaded: NodeCryptoModule | undefined;
let loading: Promise<NodeCryptoModule> | undefined;

/** Loads node:crypto (once); resolves to the module. */
export function loadNodeCrypto(): Promise<NodeCryptoModule> {
  loading ??= import("node:crypto").then((m) => loaded = m);
  return loading;
}

/** node:crypto once `loadNodeCrypto()` has resolved; throws before (a missing load is a bug). */
export function nodeCrypto(): NodeCryptoModule {
  if (loaded === undefined) {
    throw new Error("node:crypto used before loadNodeCrypto() resolved");
  }
  return loaded;
}

/** `n` random bytes (WebCrypto: does not load node:crypto). */
export function randomBytes(n: number): Uint8Array {
  return globalThis.crypto.getRandomValues(new Uint8Array(n));
}
