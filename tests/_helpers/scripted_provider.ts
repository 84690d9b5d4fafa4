/**
 * A scripted ODMR provider on 127.0.0.1:0 for customer tests: answers EHLO / STARTTLS / AUTH
 * (CRAM-MD5, PLAIN, LOGIN checked against one user) / ATRN as told, then plays the SMTP
 * client from a script (MAIL, RCPTs, DATA with given bytes) and records the customer's
 * replies. Can offer a foreign recipient, drop mid-DATA, never reverse, write raw DATA bytes
 * (smuggling) and inject bytes after its STARTTLS `220` (response injection).
 */
import net from "node:net";
import tls from "node:tls";
import { createHmac, randomBytes } from "node:crypto";
import { SocketConn } from "../../src/net/conn.ts";
import type { Conn } from "../../src/net/conn.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import type { Reply } from "../../src/wire/reply.ts";
import { readReply } from "../../src/smtp/reply_reader.ts";
import { dotStuff } from "./smtp_submit.ts";

/** One message the provider offers after reversal. */
export interface ScriptMessage {
  readonly from: string;
  readonly rcpts: readonly string[];
  /** Un-stuffed body, CRLF line ends (the helper stuffs it). */
  readonly body: Uint8Array;
  /** Write this many body bytes, then drop the connection. */
  readonly dropAfterBodyBytes?: number;
  /**
   * Written after `354` exactly as given, instead of the stuffed body and its end marker
   * (smuggling). Every reply that follows is then read, until the customer closes or is quiet.
   */
  readonly rawData?: Uint8Array;
  /**
   * Send the body with BDAT instead of DATA (RFC 3030), as it is (no stuffing), in chunks of
   * this many octets, the last one with LAST. `data` is then the reply to the first chunk;
   * `final` the reply to the last one (or to the first chunk the customer refused).
   */
  readonly bdatChunkBytes?: number;
}

/** How the provider behaves. */
export interface ScriptedProviderOptions {
  readonly user: string;
  readonly password: string;
  /** Offered in EHLO; default CRAM-MD5 PLAIN LOGIN (PLAIN/LOGIN only when secure, like ours). */
  readonly mechanisms?: readonly string[];
  /** Offer STARTTLS with this certificate. */
  readonly tls?: { readonly cert: string; readonly key: string };
  /** Whole listener is TLS (implicit). Needs `tls`. */
  readonly implicitTls?: boolean;
  /** Default true. */
  readonly offerAtrn?: boolean;
  /** Reply to ATRN; default "250 OK now reversing the connection". */
  readonly atrnReply?: string;
  /** Messages to send after reversal. */
  readonly messages?: readonly ScriptMessage[];
  /** Written in the same segment right after `220 … Ready to start TLS` (injection). */
  readonly afterStartTls220?: Uint8Array;
}

/** What one message got from the customer. */
export interface MessageResult {
  mail: Reply | undefined;
  readonly rcpt: Reply[];
  data: Reply | undefined;
  final: Reply | undefined;
  /** With `rawData`: every reply after the raw bytes, in order (`final` is the first). */
  readonly afterRaw: Reply[];
}

/** What one session saw. */
export interface ProviderSession {
  authMechanism: string | undefined;
  isAuthenticated: boolean;
  wasSecureAtAuth: boolean;
  atrnLine: string | undefined;
  customerGreeting: Reply | undefined;
  /** The customer's reply to our EHLO after ATRN. */
  customerEhlo: Reply | undefined;
  results: MessageResult[];
  quitReply: Reply | undefined;
}

/** A running scripted provider. */
export interface ScriptedProvider {
  readonly host: string;
  readonly port: number;
  readonly sessions: ProviderSession[];
  /** Resolves when the session in flight (or the next to end) is over. */
  sessionEnded(): Promise<void>;
  close(): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const TIMEOUT_MS = 10_000;
/** After raw DATA bytes: this long without a reply means the customer said all it will. */
const RAW_QUIET_MS = 1_500;

/** Starts the provider. */
export async function startScriptedProvider(
  opts: ScriptedProviderOptions,
): Promise<ScriptedProvider> {
  const sessions: ProviderSession[] = [];
  const running = new Set<Promise<void>>();
  const conns = new Set<Conn>();
  const secureContext = opts.tls
    ? tls.createSecureContext({ cert: opts.tls.cert, key: opts.tls.key })
    : undefined;
  let endWaiters: (() => void)[] = [];

  const onSocket = (socket: net.Socket, isSecure: boolean) => {
    const conn = new SocketConn(socket, { isSecure });
    conns.add(conn);
    const session: ProviderSession = {
      authMechanism: undefined,
      isAuthenticated: false,
      wasSecureAtAuth: false,
      atrnLine: undefined,
      customerGreeting: undefined,
      customerEhlo: undefined,
      results: [],
      quitReply: undefined,
    };
    sessions.push(session);
    const p = runSession(conn, opts, session, secureContext)
      .catch(() => {})
      .finally(async () => {
        await conn.close().catch(() => {});
        conns.delete(conn);
        running.delete(p);
        const w = endWaiters;
        endWaiters = [];
        for (const f of w) f();
      });
    running.add(p);
  };
  const server = opts.implicitTls && opts.tls
    ? tls.createServer(
      { cert: opts.tls.cert, key: opts.tls.key, allowHalfOpen: true },
      (s) => onSocket(s, true),
    )
    : net.createServer({ allowHalfOpen: true }, (s) => onSocket(s, false));
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const addr = server.address();
  const port = typeof addr === "object" && addr !== null ? addr.port : 0;
  return {
    host: "127.0.0.1",
    port,
    sessions,
    sessionEnded: () => new Promise<void>((resolve) => endWaiters.push(resolve)),
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      for (const c of conns) c.destroy();
      await Promise.all([...running]);
    },
  };
}

async function runSession(
  conn: Conn,
  opts: ScriptedProviderOptions,
  session: ProviderSession,
  secureContext: tls.SecureContext | undefined,
): Promise<void> {
  let reader = new LineReader(conn);
  const say = (text: string) => conn.write(enc.encode(text.replaceAll("\n", "\r\n") + "\r\n"));
  const readLine = async (): Promise<string | undefined> => {
    const r = await reader.readLine(16384, TIMEOUT_MS);
    return r.kind === "line" ? dec.decode(r.line) : undefined;
  };
  await say("220 provider.test ODMR ready");
  for (;;) {
    const line = await readLine();
    if (line === undefined) return;
    const verb = (line.split(" ")[0] ?? "").toUpperCase();
    const arg = line.slice(verb.length + 1);
    if (verb === "EHLO") {
      const mechs = (opts.mechanisms ?? ["CRAM-MD5", "PLAIN", "LOGIN"])
        .filter((m) => conn.isSecure || opts.mechanisms !== undefined || m === "CRAM-MD5");
      const kw = ["ENHANCEDSTATUSCODES", `AUTH ${mechs.join(" ")}`];
      if (opts.offerAtrn ?? true) kw.push("ATRN");
      if (secureContext && !conn.isSecure) kw.push("STARTTLS");
      await say(["250-provider.test", ...kw.slice(0, -1).map((k) => `250-${k}`)].join("\n"));
      await say(`250 ${kw[kw.length - 1]}`);
    } else if (verb === "STARTTLS" && secureContext && !conn.isSecure) {
      const ready = enc.encode("220 2.0.0 Ready to start TLS\r\n");
      const extra = opts.afterStartTls220 ?? new Uint8Array(0);
      const segment = new Uint8Array(ready.length + extra.length);
      segment.set(ready);
      segment.set(extra, ready.length);
      await conn.write(segment, { flush: true });
      await conn.startTlsServer({ secureContext });
      reader = new LineReader(conn);
    } else if (verb === "AUTH") {
      session.wasSecureAtAuth = conn.isSecure;
      const ok = await authenticate(arg, opts, session, say, readLine);
      await say(ok ? "235 2.7.0 Authentication successful" : "535 5.7.8 Bad credentials");
      session.isAuthenticated = ok;
    } else if (verb === "ATRN") {
      session.atrnLine = line;
      const r = opts.atrnReply ?? "250 OK now reversing the connection";
      await conn.write(enc.encode(r + "\r\n"), { flush: true });
      if (r.startsWith("250")) {
        await playClient(conn, reader, opts.messages ?? [], session);
        return;
      }
    } else if (verb === "QUIT") {
      await say("221 2.0.0 Bye");
      return;
    } else {
      await say("502 5.5.1 Not implemented");
    }
  }
}

async function authenticate(
  arg: string,
  opts: ScriptedProviderOptions,
  session: ProviderSession,
  say: (t: string) => Promise<void>,
  readLine: () => Promise<string | undefined>,
): Promise<boolean> {
  const [mech = "", initial] = arg.split(" ");
  session.authMechanism = mech.toUpperCase();
  const b64 = (s: string) => btoa(s);
  const unb64 = (s: string) => {
    try {
      return atob(s);
    } catch {
      return "";
    }
  };
  switch (session.authMechanism) {
    case "CRAM-MD5": {
      const challenge = `<${randomBytes(8).toString("hex")}.${Date.now()}@provider.test>`;
      await say(`334 ${b64(challenge)}`);
      const answer = unb64((await readLine()) ?? "");
      const digest = createHmac("md5", opts.password).update(challenge).digest("hex");
      return answer === `${opts.user} ${digest}`;
    }
    case "PLAIN": {
      let data = initial;
      if (data === undefined) {
        await say("334 ");
        data = (await readLine()) ?? "";
      }
      const [, user, pass] = unb64(data).split("\0");
      return user === opts.user && pass === opts.password;
    }
    case "LOGIN": {
      await say(`334 ${b64("Username:")}`);
      const user = unb64((await readLine()) ?? "");
      await say(`334 ${b64("Password:")}`);
      const pass = unb64((await readLine()) ?? "");
      return user === opts.user && pass === opts.password;
    }
    default:
      return false;
  }
}

/** The reversed phase: we are the SMTP client now. */
async function playClient(
  conn: Conn,
  reader: LineReader,
  messages: readonly ScriptMessage[],
  session: ProviderSession,
): Promise<void> {
  const read = async (): Promise<Reply | undefined> => {
    const r = await readReply(reader, { timeoutMs: TIMEOUT_MS });
    return r.kind === "reply" ? r.reply : undefined;
  };
  const send = async (line: string): Promise<Reply | undefined> => {
    await conn.write(enc.encode(line + "\r\n"));
    return read();
  };
  session.customerGreeting = await read();
  if (session.customerGreeting?.code !== 220) return;
  const ehlo = await send("EHLO provider.test");
  session.customerEhlo = ehlo;
  if (ehlo?.code !== 250) return;
  for (const m of messages) {
    const result: MessageResult = {
      mail: undefined,
      rcpt: [],
      data: undefined,
      final: undefined,
      afterRaw: [],
    };
    session.results.push(result);
    result.mail = await send(`MAIL FROM:<${m.from}>`);
    for (const r of m.rcpts) {
      const reply = await send(`RCPT TO:<${r}>`);
      if (reply) result.rcpt.push(reply);
    }
    if (!result.rcpt.some((r) => r.code === 250)) {
      await send("RSET");
      continue;
    }
    if (m.bdatChunkBytes !== undefined) {
      result.final = await sendBdat(conn, read, m.body, m.bdatChunkBytes);
      continue;
    }
    result.data = await send("DATA");
    if (result.data?.code !== 354) continue;
    if (m.rawData !== undefined) {
      await conn.write(m.rawData, { flush: true });
      // A smuggled envelope, if it were obeyed, gets up to 5 more replies; read them all.
      for (let i = 0; i < 8; i++) {
        const r = await readReply(reader, { timeoutMs: RAW_QUIET_MS }).catch(() => undefined);
        if (r?.kind !== "reply") break;
        result.afterRaw.push(r.reply);
      }
      result.final = result.afterRaw[0];
      continue;
    }
    const stuffed = dotStuff(m.body);
    if (m.dropAfterBodyBytes !== undefined) {
      await conn.write(stuffed.subarray(0, m.dropAfterBodyBytes), { flush: true });
      conn.destroy();
      return;
    }
    await conn.write(stuffed);
    const tail = m.body.length === 0 || endsWithCrlf(m.body) ? ".\r\n" : "\r\n.\r\n";
    await conn.write(enc.encode(tail));
    result.final = await read();
  }
  session.quitReply = await send("QUIT");
}

/** BDAT chunks one at a time; the reply to the last, or to the first refused chunk. */
async function sendBdat(
  conn: Conn,
  read: () => Promise<Reply | undefined>,
  body: Uint8Array,
  chunkBytes: number,
): Promise<Reply | undefined> {
  let at = 0;
  for (;;) {
    const part = body.subarray(at, at + Math.max(1, chunkBytes));
    at += part.length;
    const isLast = at >= body.length;
    await conn.write(enc.encode(`BDAT ${part.length}${isLast ? " LAST" : ""}\r\n`));
    await conn.write(part);
    const r = await read();
    if (isLast || r?.code !== 250) return r;
  }
}

function endsWithCrlf(b: Uint8Array): boolean {
  return b.length >= 2 && b[b.length - 2] === 13 && b[b.length - 1] === 10;
}
