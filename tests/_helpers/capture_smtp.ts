/**
 * A minimal SMTP / LMTP server for tests, written from scratch on purpose: it is the
 * independent oracle that checks what our code sends, so it shares nothing with
 * src/smtp (no LineReader, no DataDecoder). Records every envelope and the exact
 * un-stuffed body bytes; can be told which replies to give, and can drop mid-DATA.
 */
import net from "node:net";
import tls from "node:tls";

const LF = 10;
const CR = 13;
const DOT = 46;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** One message as the capture server received it (accepted or not). */
export interface CapturedMessage {
  readonly mailFrom: string;
  /** Recipients this server accepted at RCPT time. */
  readonly recipients: readonly string[];
  /** The un-stuffed body, exactly as received (CRLF line ends kept). */
  readonly body: Uint8Array;
  /** The reply lines sent after the final dot (one per recipient under LMTP). */
  readonly replies: readonly string[];
}

/** The reply after a message's final dot, as written to the client (not lost to a hang-up). */
export interface CaptureAck {
  readonly message: CapturedMessage;
  /** `Date.now()` when the reply was written. */
  readonly at: number;
}

/** How the capture server behaves. */
export interface CaptureOptions {
  readonly protocol?: "smtp" | "lmtp";
  /** Listen on this address and port instead of 127.0.0.1:0 (outbound: an MX on 127.0.0.2:25). */
  readonly host?: string;
  readonly port?: number;
  /** Listen on this unix socket instead of 127.0.0.1:0. */
  readonly unixPath?: string;
  /** Reply to `MAIL FROM` for a reverse-path; undefined → `250 2.1.0 OK`. */
  readonly mailReply?: (address: string) => string | undefined;
  /** Offer PIPELINING in the EHLO/LHLO reply (default true). */
  readonly pipelining?: boolean;
  /** Offer 8BITMIME (default true). */
  readonly eightBitMime?: boolean;
  /** Offer SMTPUTF8 (default false). */
  readonly smtpUtf8?: boolean;
  /** Reply to `RCPT TO` for an address; undefined → `250 2.1.5 OK`. */
  readonly rcptReply?: (address: string) => string | undefined;
  /** Reply after the final dot (LMTP: asked once per accepted recipient). */
  readonly dataReply?: (address: string, index: number) => string | undefined;
  /** Close the connection once this many body bytes of a message have arrived. */
  readonly closeAfterBodyBytes?: number;
  /** The reply to the DATA command itself (instead of 354) when recipients were accepted. */
  readonly dataCommandReply?: string;
  /** Answers DATA with 354 even when no recipient was accepted (RFC 2920 §3.2 says not to). */
  readonly dataWithoutRecipients?: boolean;
  /** Wait this long before the reply after the final dot (a slow receiver; use without PIPELINING). */
  readonly dataReplyDelayMs?: number;
  /**
   * Hold the reply after the final dot until the client's next command line arrives (it then
   * goes out first), or at most this long: a client that pipelines "." with its next command
   * never waits; one that waits for the reply first is counted in `dotRepliesTimedOut`.
   */
  readonly holdDotReplyMs?: number;
  /**
   * Offer STARTTLS: "refuse" answers it `454 4.7.0 TLS not
   * available` and goes on in plaintext; "break" answers 220, then meets the client's first
   * handshake bytes with a line that is no TLS and hangs up (the handshake fails); "drop"
   * completes the handshake with `tlsFiles` and hangs up at the first bytes under TLS; "late"
   * completes it and goes on under TLS until `dropUnderTlsAt`.
   */
  readonly startTls?: "refuse" | "break" | "drop" | "late";
  /** PEM files of the certificate and key for `startTls: "drop"` and `"late"`. */
  readonly tlsFiles?: { readonly cert: string; readonly key: string };
  /**
   * With `startTls: "late"`: the command verb (`MAIL`, `RCPT`, `DATA`) at which the session
   * under TLS hangs up without a reply, or "." to record the message at its final dot and hang
   * up before the reply. Plaintext sessions are never dropped.
   */
  readonly dropUnderTlsAt?: string;
}

/** A running capture server. */
export interface CaptureServer {
  readonly host: string;
  readonly port: number;
  readonly path: string | undefined;
  /** Messages whose final dot arrived, in order. */
  readonly messages: CapturedMessage[];
  /**
   * The replies after a final dot that were written, in order: with `dataReplyDelayMs`, a
   * connection closed during the delay leaves its message in `messages` but not here.
   */
  readonly acks: CaptureAck[];
  /** Every command line received, all sessions, in order (for assertions). */
  readonly commands: string[];
  /**
   * The command lines of each arrival (one socket read): lines the client wrote before it
   * read any reply to them share an arrival (PIPELINING); lock-step commands never do.
   */
  readonly arrivals: string[][];
  /** Connections accepted so far. */
  readonly connections: number;
  /** Replies after the final dot held the whole `holdDotReplyMs` (the client waited for them). */
  readonly dotRepliesTimedOut: number;
  /** Resolves once `count` messages are complete (rejects after `timeoutMs`). */
  waitForMessages(count: number, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

/** Starts a capture server on 127.0.0.1:0 (or a unix socket). */
export async function startCaptureServer(opts: CaptureOptions = {}): Promise<CaptureServer> {
  const protocol = opts.protocol ?? "smtp";
  const messages: CapturedMessage[] = [];
  const commands: string[] = [];
  const arrivals: string[][] = [];
  const acks: CaptureAck[] = [];
  const held = { timedOut: 0 };
  const sockets = new Set<net.Socket>();
  let connections = 0;
  let waiters: (() => void)[] = [];
  const notify = () => {
    const w = waiters;
    waiters = [];
    for (const f of w) f();
  };

  const server = net.createServer({ allowHalfOpen: false }, (socket) => {
    connections++;
    socket.setNoDelay(true);
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    handleSession(socket, protocol, opts, { commands, arrivals, acks, held }, (m) => {
      messages.push(m);
      notify();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    if (opts.unixPath !== undefined) server.listen(opts.unixPath, () => resolve());
    else server.listen(opts.port ?? 0, opts.host ?? "127.0.0.1", () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;

  return {
    host: opts.host ?? "127.0.0.1",
    port,
    path: opts.unixPath,
    messages,
    acks,
    commands,
    arrivals,
    get connections() {
      return connections;
    },
    get dotRepliesTimedOut() {
      return held.timedOut;
    },
    waitForMessages(count: number, timeoutMs = 10_000): Promise<void> {
      return new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters = waiters.filter((w) => w !== check);
          reject(new Error(`capture server: ${messages.length} of ${count} messages arrived`));
        }, timeoutMs);
        const check = () => {
          if (messages.length >= count) {
            clearTimeout(timer);
            resolve();
          } else waiters.push(check);
        };
        check();
      });
    },
    close(): Promise<void> {
      return new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      });
    },
  };
}

type Mode = "command" | "data";

interface SessionLog {
  readonly commands: string[];
  readonly arrivals: string[][];
  readonly acks: CaptureAck[];
  readonly held: { timedOut: number };
}

function handleSession(
  socket: net.Socket,
  protocol: "smtp" | "lmtp",
  opts: CaptureOptions,
  log: SessionLog,
  onMessage: (m: CapturedMessage) => void,
  /** The session goes on under TLS after STARTTLS (no greeting; `dropUnderTlsAt` applies). */
  isTls = false,
): void {
  const commands = log.commands;
  const dropAt = isTls ? opts.dropUnderTlsAt?.toUpperCase() : undefined;
  let mode: Mode = "command";
  /** After a 220 to STARTTLS under `startTls: "break"`: the next bytes end the session. */
  let isBroken = false;
  let pending = new Uint8Array(0);
  let mailFrom: string | undefined;
  let recipients: string[] = [];
  let bodyParts: Uint8Array[] = [];
  let bodyBytes = 0;
  const send = (text: string) => {
    if (!socket.destroyed) socket.write(enc.encode(text + "\r\n"));
  };
  const greetingName = protocol === "lmtp" ? "LMTP" : "ESMTP";
  if (!isTls) send(`220 capture.test ${greetingName} ready`);

  const finishMessage = () => {
    const body = concat(bodyParts, bodyBytes);
    if (dropAt === ".") {
      // Recorded, never answered: the client cannot know whether the message arrived.
      onMessage({ mailFrom: mailFrom ?? "", recipients, body, replies: [] });
      socket.destroy();
      return;
    }
    const replies: string[] = [];
    if (protocol === "lmtp") {
      recipients.forEach((r, i) => replies.push(opts.dataReply?.(r, i) ?? "250 2.0.0 OK"));
    } else {
      replies.push(opts.dataReply?.(recipients[0] ?? "", 0) ?? "250 2.0.0 OK queued");
    }
    const message = { mailFrom: mailFrom ?? "", recipients, body, replies };
    onMessage(message);
    const answer = enc.encode(replies.map((r) => r + "\r\n").join(""));
    const reply = () => {
      if (socket.destroyed) return;
      socket.write(answer);
      log.acks.push({ message, at: Date.now() });
    };
    if (opts.holdDotReplyMs !== undefined) {
      heldReply = {
        reply,
        timer: setTimeout(() => {
          log.held.timedOut++;
          releaseHeld();
        }, opts.holdDotReplyMs),
      };
    } else if (opts.dataReplyDelayMs === undefined) reply();
    else setTimeout(reply, opts.dataReplyDelayMs);
    mailFrom = undefined;
    recipients = [];
    bodyParts = [];
    bodyBytes = 0;
  };

  let heldReply: { reply: () => void; timer: ReturnType<typeof setTimeout> } | undefined;
  const releaseHeld = () => {
    const h = heldReply;
    heldReply = undefined;
    if (h === undefined) return;
    clearTimeout(h.timer);
    h.reply();
  };
  socket.on("close", () => {
    if (heldReply !== undefined) clearTimeout(heldReply.timer);
  });

  const onCommand = (line: string) => {
    // The reply to the "." before this command goes out first (holdDotReplyMs).
    releaseHeld();
    commands.push(line);
    const verb = line.split(" ")[0]?.toUpperCase() ?? "";
    if (verb === dropAt) {
      socket.destroy();
      return;
    }
    switch (verb) {
      case "EHLO":
      case "LHLO":
        if ((verb === "LHLO") !== (protocol === "lmtp")) {
          send("500 5.5.1 Wrong greeting command");
          return;
        }
        send(
          "250-capture.test\r\n" + (opts.pipelining === false ? "" : "250-PIPELINING\r\n") +
            (opts.startTls === undefined || isTls ? "" : "250-STARTTLS\r\n") +
            (opts.eightBitMime === false ? "" : "250-8BITMIME\r\n") +
            (opts.smtpUtf8 === true ? "250-SMTPUTF8\r\n" : "") + "250-ENHANCEDSTATUSCODES",
        );
        send("250 SIZE 104857600");
        return;
      case "HELO":
        send("250 capture.test");
        return;
      case "MAIL": {
        const m = /^MAIL FROM:<([^>]*)>/i.exec(line);
        if (!m) return send("501 5.5.4 Syntax");
        const refusal = opts.mailReply?.(m[1] ?? "");
        if (refusal !== undefined && !refusal.startsWith("2")) return send(refusal);
        mailFrom = m[1] ?? "";
        recipients = [];
        return send(refusal ?? "250 2.1.0 OK");
      }
      case "RCPT": {
        const m = /^RCPT TO:<([^>]*)>/i.exec(line);
        if (!m || mailFrom === undefined) return send("503 5.5.1 Bad sequence");
        const address = m[1] ?? "";
        const r = opts.rcptReply?.(address);
        if (r === undefined || r.startsWith("2")) recipients.push(address);
        return send(r ?? "250 2.1.5 OK");
      }
      case "DATA":
        if (mailFrom === undefined || (recipients.length === 0 && !opts.dataWithoutRecipients)) {
          return send("554 5.5.1 No valid recipients");
        }
        if (opts.dataCommandReply !== undefined) return send(opts.dataCommandReply);
        mode = "data";
        return send("354 Go ahead");
      case "RSET":
        mailFrom = undefined;
        recipients = [];
        return send("250 2.0.0 OK");
      case "NOOP":
        return send("250 2.0.0 OK");
      case "STARTTLS":
        if (opts.startTls === "refuse") return send("454 4.7.0 TLS not available");
        if (opts.startTls === undefined) return send("502 5.5.1 Not implemented");
        send("220 2.0.0 Ready to start TLS");
        isBroken = true;
        if (opts.startTls === "drop") dropUnderTls(socket, opts.tlsFiles);
        if (opts.startTls === "late") {
          const secure = underTls(socket, opts.tlsFiles);
          handleSession(secure, protocol, opts, log, onMessage, true);
        }
        return;
      case "QUIT":
        send("221 2.0.0 Bye");
        socket.end();
        return;
      default:
        return send("502 5.5.1 Not implemented");
    }
  };

  socket.on("data", (chunk: Uint8Array) => {
    if (isBroken) {
      // The client's ClientHello: answer with what no TLS peer can parse, and hang up.
      if (!socket.destroyed) socket.end(enc.encode("this is not TLS\r\n"));
      return;
    }
    let buf = pending.length === 0
      ? chunk
      : concat([pending, chunk], pending.length + chunk.length);
    let start = 0;
    const arrival: string[] = [];
    for (;;) {
      const lf = buf.indexOf(LF, start);
      if (lf < 0) break;
      const line = buf.subarray(start, lf + 1);
      start = lf + 1;
      if (mode === "command") {
        const text = dec.decode(line).replace(/\r?\n$/, "");
        if (arrival.length === 0) log.arrivals.push(arrival);
        arrival.push(text);
        onCommand(text);
        if (socket.destroyed || isBroken) return;
        continue;
      }
      // DATA: a line "." ends the body; a leading dot is removed (RFC 5321 §4.5.2).
      if (line.length === 3 && line[0] === DOT && line[1] === CR) {
        mode = "command";
        finishMessage();
        continue;
      }
      const content = line[0] === DOT ? line.subarray(1) : line;
      bodyParts.push(content.slice());
      bodyBytes += content.length;
      if (opts.closeAfterBodyBytes !== undefined && bodyBytes >= opts.closeAfterBodyBytes) {
        socket.destroy();
        return;
      }
    }
    buf = buf.subarray(start);
    pending = buf.slice();
  });
}

/** TLS over `socket` (the client's ClientHello comes next), closed at its first bytes. */
function dropUnderTls(socket: net.Socket, files: CaptureOptions["tlsFiles"]): void {
  const secure = underTls(socket, files);
  secure.on("data", () => secure.destroy());
}

/** The server side of TLS over `socket`, whose plaintext reading stops here. */
function underTls(socket: net.Socket, files: CaptureOptions["tlsFiles"]): tls.TLSSocket {
  if (files === undefined) throw new Error("startTls: drop or late needs tlsFiles");
  // Paused first, as src/net/socket_conn.ts upgrades: else the raw ClientHello may still come
  // out as plaintext "data" (Deno's node:tls over a flowing socket).
  socket.pause();
  socket.removeAllListeners("data");
  const secure = new tls.TLSSocket(socket, {
    isServer: true,
    secureContext: tls.createSecureContext({
      cert: Deno.readTextFileSync(files.cert),
      key: Deno.readTextFileSync(files.key),
    }),
  });
  secure.on("error", () => {});
  // Hanging up under TLS hangs up the connection.
  secure.on("close", () => socket.destroy());
  return secure;
}

function concat(parts: readonly Uint8Array[], total: number): Uint8Array {
  const out = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
