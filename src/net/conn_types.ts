/**
 * The Conn interface and what it speaks in: errors, write options and TLS upgrade parameters.
 * Implemented by SocketConn in conn.ts (which re-exports all of this) and by test doubles.
 */
import type tls from "node:tls";

/** Raised when a read or write did not complete before its deadline. */
export class TimeoutError extends Error {
  constructor(what: string) {
    super(`${what} timed out`);
    this.name = "TimeoutError";
  }
}

/** Raised when the peer is gone (reset, closed while writing). */
export class ConnClosedError extends Error {
  constructor(reason: string) {
    super(reason);
    this.name = "ConnClosedError";
  }
}

/** A pull source of byte chunks: `null` means end of stream. */
export interface ByteSource {
  read(timeoutMs?: number): Promise<Uint8Array | null>;
  /**
   * Bytes received and not read yet: what the next reads return without waiting. A source that
   * cannot tell leaves it out (taken as 0).
   */
  readonly readableBytes?: number;
}

/** Options for writing. */
export interface WriteOptions {
  /** Wait until the bytes were handed to the kernel (one write = one TLS record under TLS). */
  readonly flush?: boolean;
  readonly timeoutMs?: number;
}

/** TLS parameters for becoming the TLS server. */
export interface TlsServerParams {
  readonly secureContext: tls.SecureContext;
  /**
   * Ask the client for a certificate without requiring one or checking its chain (AUTH
   * EXTERNAL pins certificates by fingerprint; a client without one carries on).
   */
  readonly requestCert?: boolean;
}

/** TLS parameters for becoming the TLS client. */
export interface TlsClientParams {
  readonly servername: string;
  /**
   * Trust roots (PEM) used instead of the system's: a private CA, or the server's own
   * certificate (pinning). Reading the system roots to add to them would need
   * `--allow-sys=ca`, which the documented permissions do not grant.
   */
  readonly ca?: string | readonly string[];
  /** false: complete the handshake even if the certificate does not verify. */
  readonly rejectUnauthorized?: boolean;
  /** Our own certificate and its key (PEM), presented when the server asks (AUTH EXTERNAL). */
  readonly cert?: string;
  readonly key?: string;
  readonly timeoutMs?: number;
}

/** What a TLS upgrade found. */
export interface TlsUpgradeResult {
  /** Plaintext bytes that had arrived after the STARTTLS line and were thrown away. */
  readonly discardedBytes: number;
  readonly authorized: boolean;
  readonly authorizationError?: string;
}

/** A connection, independent of who started it and of the SMTP role played on it. */
export interface Conn extends ByteSource {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localAddress: string;
  readonly localPort: number;
  readonly isSecure: boolean;
  write(bytes: Uint8Array, opts?: WriteOptions): Promise<void>;
  /**
   * Writes each piece as its own flushed write (one TLS record each under TLS), the next once
   * the previous one reached the kernel; one deadline for the whole list. Empty pieces are
   * skipped.
   */
  writeRecords(
    pieces: readonly Uint8Array[],
    opts?: { readonly timeoutMs?: number },
  ): Promise<void>;
  /** Becomes the TLS server on this connection (after our `220` to STARTTLS). */
  startTlsServer(params: TlsServerParams): Promise<TlsUpgradeResult>;
  /** Becomes the TLS client on this connection (after the peer's `220` to STARTTLS). */
  startTlsClient(params: TlsClientParams): Promise<TlsUpgradeResult>;
  /** RFC 5705 keying material (tls-exporter channel binding), when under TLS. */
  exportKeyingMaterial(length: number, label: string): Uint8Array | undefined;
  /** SHA-256 fingerprint (`AB:CD:…`) of the certificate the TLS peer presented, if any. */
  peerCertificateFingerprint?(): string | undefined;
  /** Half-close after flushing pending writes, then release. Idempotent. */
  close(): Promise<void>;
  /** Drop the connection at once. Idempotent. */
  destroy(): void;
  readonly closed: boolean;
  /**
   * True once the peer's end of input (or a read error) was received: only the bytes queued
   * before it are left to read. An end that came right after a `QUIT` line does not count (the
   * client half-closed once done and reads the replies). Absent where the Conn cannot tell.
   */
  readonly inputEnded?: boolean;
}
