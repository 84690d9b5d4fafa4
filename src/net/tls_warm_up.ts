/**
 * The first TLS handshake of a process pays a one-time set-up of the crypto library inside
 * `tls.connect` (measured on Deno 2.9.6, 2 cores: 35–60 ms of CPU on the main thread, with no
 * system call, before the ClientHello leaves; the second handshake in the same process takes
 * ~2 ms). Generating one throwaway P-256 key with WebCrypto pays the same set-up (after it the
 * first handshake took 7–10 ms) and runs on Deno's blocking thread pool, not on the main
 * thread. `fetch` starts it once its config says TLS, so the set-up overlaps the loading of its
 * modules, the connect and the first EHLO instead of delaying the STARTTLS. Nothing is
 * weakened: the key is never used, the handshake and its checks are unchanged.
 */

let warming: Promise<void> | undefined;

/** Starts the set-up in the background (once per process); never throws. */
export function warmUpTlsCrypto(): void {
  warming ??= crypto.subtle
    .generateKey({ name: "ECDH", namedCurve: "P-256" }, false, ["deriveBits"])
    .then(() => {}, () => {});
}

/** Resolves once a started warm-up is done (at once when none was started). */
export function tlsWarmedUp(): Promise<void> {
  return warming ?? Promise.resolve();
}
