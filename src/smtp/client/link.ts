/**
 * The SMTP client link: the client role's half of one connection it is handed (RFC 5321 §4).
 * It writes commands, alone or as RFC 2920 groups, reads replies under deadlines, says hello
 * (EHLO or LHLO, HELO fallback), upgrades to TLS, and knows when the connection is lost. Every
 * way a link ends has ONE meaning here: a 421 (RFC 5321 §3.8), end of stream, a reply deadline,
 * a malformed reply or a failed write destroys the connection and becomes a `Loss` carrying
 * the reply that settles whatever was waiting. Its users (the drain's sender, the customer's
 * dialogue before ATRN, the customer's local hand-off, outbound delivery) decide what a loss
 * means to their own caller. It never opens a connection and knows nothing about messages.
 */
import type { Conn, TlsClientParams, TlsUpgradeResult } from "../../net/conn.ts";
import { TimeoutError } from "../../net/conn_types.ts";
import { concatBytes, encodeLineGroup, encodeLines } from "../../wire/bytes.ts";

export { encodeLines };
import { LineReader } from "../../wire/line_reader.ts";
import type { Reply } from "../../wire/reply.ts";
import { isPermanent, isPositive, reply } from "../../wire/reply.ts";
import { type Capabilities, heloCapabilities, parseEhloReply } from "../../wire/ehlo.ts";
import type { Logger } from "../../observe/log.ts";
import { readReply } from "../reply_reader.ts";

/** Connection closed or broken before the reply that was awaited. */
export const LINK_CLOSED: Reply = reply(421, "4.4.2", "Connection lost");
/** The peer did not answer (or take our bytes) in time (RFC 5321 §4.5.3.2). */
export const LINK_TIMED_OUT: Reply = reply(421, "4.4.2", "Timed out waiting for a reply");
/** The peer's reply was malformed or out of place; the dialogue cannot go on. */
export const LINK_PROTOCOL_ERROR: Reply = reply(421, "4.5.0", "Unexpected reply from peer");

/**
 * Why a link ended. `closing`: the peer said 421; `eof`: it closed or reset; `timeout`: a
 * reply or a write missed its deadline; `garbage`: a reply broke the framing; `write`: a
 * write failed; `local`: a user of the link gave up on it (an out-of-place reply, a body that
 * cannot be completed).
 */
export type LossCause = "closing" | "eof" | "timeout" | "garbage" | "write" | "local";

/** A lost link: why, and the reply that settles what was waiting on it. */
export interface Loss {
  readonly cause: LossCause;
  /** The peer's 421 (cause `closing`), else a local 421 (LINK_*) or the one given to `lose`. */
  readonly reply: Reply;
  /** For logs and people; never sent to a peer. */
  readonly reason: string;
}

/** A reply, or the link was (or got) lost while waiting for it. */
export type Answer =
  | { readonly kind: "reply"; readonly reply: Reply }
  | { readonly kind: "lost"; readonly loss: Loss };

/** How a hello ended. */
export type Hello =
  | { readonly kind: "ready"; readonly caps: Capabilities }
  /** EHLO/LHLO (and HELO when tried) refused; the link is still usable (for QUIT). */
  | { readonly kind: "refused"; readonly reply: Reply }
  | { readonly kind: "lost"; readonly loss: Loss };

/** How the link writes. */
export interface LinkOptions {
  /**
   * Each line (and each body piece) is its own write with `flush`: one TLS record per line,
   * for fetchmail, which reads one line per record in ODMR mode.
   */
  readonly lineRecords?: boolean;
}

/** The client role's view of one connection. */
export class ClientLink {
  readonly #conn: Conn;
  #reader: LineReader;
  readonly #log: Logger;
  readonly #lineRecords: boolean;
  #loss: Loss | undefined;

  constructor(args: { conn: Conn; reader: LineReader; log: Logger; options?: LinkOptions }) {
    this.#conn = args.conn;
    this.#reader = args.reader;
    this.#log = args.log;
    this.#lineRecords = args.options?.lineRecords ?? false;
  }

  get conn(): Conn {
    return this.#conn;
  }

  /** The reader (the next role takes it over after a reversal). */
  get reader(): LineReader {
    return this.#reader;
  }

  get lineRecords(): boolean {
    return this.#lineRecords;
  }

  /** Why the link is lost; undefined while it is usable. */
  get loss(): Loss | undefined {
    return this.#loss;
  }

  get isLost(): boolean {
    return this.#loss !== undefined;
  }

  /** Reads one reply; a 421, end of stream, timeout or garbage loses the link. */
  async read(timeoutMs: number): Promise<Answer> {
    if (this.#loss !== undefined) return { kind: "lost", loss: this.#loss };
    const result = await readReply(this.#reader, { timeoutMs });
    switch (result.kind) {
      case "reply":
        // RFC 5321 §3.8: 421 may come at any time and means the server is closing.
        if (result.reply.code === 421) {
          return this.#lost({ cause: "closing", reply: result.reply, reason: "peer sent 421" });
        }
        return result;
      case "eof":
        return this.#lost({ cause: "eof", reply: LINK_CLOSED, reason: "closed by peer" });
      case "timeout":
        return this.#lost({
          cause: "timeout",
          reply: LINK_TIMED_OUT,
          reason: "timed out waiting for a reply",
        });
      case "invalid":
        return this.#lost({
          cause: "garbage",
          reply: LINK_PROTOCOL_ERROR,
          reason: result.reason,
        });
      default: {
        const never: never = result;
        throw new Error(`unreachable reply result ${JSON.stringify(never)}`);
      }
    }
  }

  /** Writes one command line and reads its reply. */
  async command(line: string, timeoutMs: number): Promise<Answer> {
    if (!(await this.writeLines([line], timeoutMs))) return this.#lostAnswer();
    return this.read(timeoutMs);
  }

  /** Writes command lines as one group (RFC 2920: one write), or one record each. */
  writeLines(lines: readonly string[], timeoutMs: number): Promise<boolean> {
    if (this.#lineRecords) return this.writeEach(encodeLines(lines), timeoutMs);
    return this.writeEach([encodeLineGroup(lines)], timeoutMs);
  }

  /** Writes encoded command lines as one write, or (lineRecords) one flushed write each. */
  writeGroup(pieces: readonly Uint8Array[], timeoutMs: number): Promise<boolean> {
    if (this.#lineRecords) return this.writeEach(pieces, timeoutMs);
    return this.writeEach([concatBytes(pieces)], timeoutMs);
  }

  /**
   * Writes each piece as it is (under lineRecords each in a TLS record of its own, through
   * Conn.writeRecords); false once the link is lost. `flushed`: each write resolves only once
   * the socket is done with its bytes, so the caller may reuse the buffer.
   */
  async writeEach(
    pieces: readonly Uint8Array[],
    timeoutMs: number,
    opts: { readonly flushed?: boolean } = {},
  ): Promise<boolean> {
    if (this.#loss !== undefined) return false;
    try {
      if (this.#lineRecords) {
        await this.#conn.writeRecords(pieces, { timeoutMs });
      } else {
        const flush = opts.flushed === true;
        for (const piece of pieces) {
          // Awaited one by one: a peer that reads slowly slows us down (backpressure).
          if (piece.length > 0) await this.#conn.write(piece, { timeoutMs, flush });
        }
      }
    } catch (err) {
      this.#writeFailed(err);
      return false;
    }
    return true;
  }

  #writeFailed(err: unknown): void {
    if (err instanceof TimeoutError) {
      this.#lost({ cause: "timeout", reply: LINK_TIMED_OUT, reason: "write timed out" });
    } else {
      this.#lost({ cause: "write", reply: LINK_CLOSED, reason: `write failed: ${err}` });
    }
  }

  /** Reads the greeting: a 220 opens the dialogue; anything else is for the caller to judge. */
  greet(timeoutMs: number): Promise<Answer> {
    return this.read(timeoutMs);
  }

  /**
   * EHLO (LHLO under LMTP, RFC 2033 §4.1). A 5xx falls back to HELO (RFC 5321 §4.1.4: a server
   * that refuses EHLO may still speak HELO) unless `heloFallback` is false; LMTP has no HELO.
   */
  async hello(
    hostname: string,
    opts: { readonly timeoutMs: number; readonly lmtp?: boolean; readonly heloFallback?: boolean },
  ): Promise<Hello> {
    const lmtp = opts.lmtp ?? false;
    const ehlo = await this.command(`${lmtp ? "LHLO" : "EHLO"} ${hostname}`, opts.timeoutMs);
    if (ehlo.kind === "lost") return ehlo;
    if (isPositive(ehlo.reply)) return { kind: "ready", caps: parseEhloReply(ehlo.reply) };
    if (lmtp || !(opts.heloFallback ?? true) || !isPermanent(ehlo.reply)) {
      return { kind: "refused", reply: ehlo.reply };
    }
    const helo = await this.command(`HELO ${hostname}`, opts.timeoutMs);
    if (helo.kind === "lost") return helo;
    if (!isPositive(helo.reply)) return { kind: "refused", reply: helo.reply };
    return { kind: "ready", caps: heloCapabilities(helo.reply) };
  }

  /**
   * After a 220 to STARTTLS: drops plaintext bytes already read (RFC 3207 §4.2, CVE-2011-0411:
   * they are an injection), upgrades, and reads on with a fresh reader (RFC 3207 §4.2: the
   * client must forget what it learnt before TLS and say EHLO again). Throws when the
   * handshake fails; the link is lost then.
   */
  async startTls(params: TlsClientParams): Promise<TlsUpgradeResult> {
    const buffered = this.#reader.discardBuffered();
    let upgrade: TlsUpgradeResult;
    try {
      upgrade = await this.#conn.startTlsClient(params);
    } catch (err) {
      this.#lost({ cause: "local", reply: LINK_CLOSED, reason: `TLS failed: ${err}` });
      throw err;
    }
    this.#reader = new LineReader(this.#conn);
    return { ...upgrade, discardedBytes: upgrade.discardedBytes + buffered };
  }

  /** QUIT and a bounded wait for the reply. Never throws; leaves closing the Conn to the caller. */
  async quit(timeoutMs: number): Promise<Answer> {
    const answer = await this.command("QUIT", timeoutMs);
    if (answer.kind === "reply" && answer.reply.code !== 221) {
      this.#log.debug("link_quit_reply", { code: answer.reply.code });
    }
    return answer;
  }

  /** A user of the link gives up on it (out-of-place reply, unfinishable body): drops it. */
  lose(reply: Reply, reason: string): Loss {
    this.#lost({ cause: "local", reply, reason });
    // The first loss stays the one that counts.
    return this.#loss ?? { cause: "local", reply, reason };
  }

  #lostAnswer(): Answer {
    const loss = this.#loss ?? { cause: "local", reply: LINK_CLOSED, reason: "link lost" };
    return { kind: "lost", loss };
  }

  /** Marks the link lost and drops the connection (the reader's state is unknown now). */
  #lost(loss: Loss): Answer {
    if (this.#loss === undefined) {
      this.#loss = loss;
      this.#log.warn("link_lost", { cause: loss.cause, reason: loss.reason, conn: this.#conn.id });
      this.#conn.destroy();
    }
    return { kind: "lost", loss: this.#loss };
  }
}
