/**
 * `serve`'s certificate: loaded and checked at start (a broken pair stops the start, naming
 * the file), reloaded on SIGHUP and when the files change (checked every
 * CERT_CHECK_INTERVAL_MS), logged and reported as the expiry metric. A reload that fails
 * keeps the pair in use and logs an error; open sessions keep the context they started with.
 */
import type tls from "node:tls";
import type { Config } from "../config/types.ts";
import type { Logger } from "../observe/log.ts";
import { certificateWarnings, ReloadableTlsContext } from "../net/tls_context.ts";
import type { CertificatePair } from "../net/tls_context.ts";

import type { CertificateError } from "../net/tls_context.ts";
export { CertificateError } from "../net/tls_context.ts";

/** The `startup_failed` event of a pair that cannot be used: config file, key path, file. */
export function failureFields(config: Config, err: CertificateError): Record<string, string> {
  return {
    config: config.source ?? "(embedded defaults)",
    key: err.keyPath,
    file: err.file,
    reason: err.message,
  };
}

/** How often the certificate files are checked for a change (renewals are noticed within it). */
export const CERT_CHECK_INTERVAL_MS = 30_000;

/** Why a reload was attempted. */
export type ReloadCause = "signal" | "file_changed";

/** The server's reloadable certificate. */
export class ServeTls {
  readonly #slot: ReloadableTlsContext;
  readonly #config: Config;
  readonly #log: Logger;
  #onPair: (pair: CertificatePair) => void = () => {};
  #timer: ReturnType<typeof setInterval> | undefined;

  private constructor(slot: ReloadableTlsContext, opts: { config: Config; log: Logger }) {
    this.#slot = slot;
    this.#config = opts.config;
    this.#log = opts.log;
  }

  /**
   * Loads `tls.cert`/`tls.key`: undefined without a `tls` section; throws CertificateError
   * (naming the key and the file) when the pair cannot be used. Logs the warnings of a pair that loads.
   */
  static open(config: Config, opts: { log: Logger }): ServeTls | undefined {
    if (config.tls === undefined) return undefined;
    const slot = new ReloadableTlsContext(config.tls.cert, config.tls.key);
    const t = new ServeTls(slot, { config, log: opts.log });
    t.#warn(slot.pair);
    return t;
  }

  /** Calls `fn` with the pair in use now and with each pair a reload brings (the metric). */
  onPair(fn: (pair: CertificatePair) => void): void {
    this.#onPair = fn;
    fn(this.#slot.pair);
  }

  /** The context a connection starting now uses. */
  get current(): tls.SecureContext {
    return this.#slot.current;
  }

  get pair(): CertificatePair {
    return this.#slot.pair;
  }

  /** Re-reads the files (SIGHUP: always; timer: only when they changed). */
  reload(cause: ReloadCause): void {
    const r = cause === "signal" ? this.#slot.reload() : this.#slot.reloadIfChanged();
    const files = { cert: this.#slot.certFile, key: this.#slot.keyFile };
    switch (r.kind) {
      case "reloaded":
        this.#log.info("tls_reloaded", {
          cause,
          ...files,
          not_after: r.pair.notAfter.toISOString(),
        });
        this.#onPair(r.pair);
        this.#warn(r.pair);
        return;
      case "unchanged":
        if (cause === "signal") this.#log.info("tls_unchanged", { cause, ...files });
        return;
      case "failed":
        this.#log.error("tls_reload_failed", {
          cause,
          key: r.error.keyPath,
          file: r.error.file,
          reason: r.error.message,
          kept_not_after: this.#slot.pair.notAfter.toISOString(),
        });
        return;
      default: {
        const never: never = r;
        throw new Error(`unreachable ${String(never)}`);
      }
    }
  }

  /** Starts checking the files every `intervalMs`. */
  watch(intervalMs = CERT_CHECK_INTERVAL_MS): void {
    this.#timer ??= setInterval(() => this.reload("file_changed"), intervalMs);
  }

  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  #warn(pair: CertificatePair): void {
    const certFile = this.#slot.certFile;
    for (const reason of certificateWarnings(pair, { hostname: this.#config.hostname, certFile })) {
      this.#log.warn("tls_certificate_warning", { reason });
    }
  }
}
