/**
 * A scripted ODMR customer for provider tests, written independently of src/ (Deno.connect,
 * Deno.startTls, node:crypto): EHLO, optional STARTTLS, AUTH (CRAM-MD5, PLAIN, SCRAM-SHA-256),
 * ATRN, then the SMTP server role with per-recipient and per-message replies from the script.
 * Records every line it saw and every message it received, byte-exact (dot-unstuffed).
 */
import { createHash, createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { Buffer } from "node:buffer";
import { concatBytes } from "../../src/wire/bytes.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

export interface ReceivedMessage {
  readonly mailFrom: string;
  readonly rcpts: string[];
  readonly data: Uint8Array;
}

export interface CustomerScript {
  readonly host?: string;
  readonly port: number;
  /** "implicit": TLS from the first byte; "starttls": STARTTLS before AUTH. */
  readonly tls?: "starttls" | "implicit";
  readonly caCerts?: string[];
  readonly auth?: {
    readonly mechanism: "CRAM-MD5" | "PLAIN" | "SCRAM-SHA-256";
    readonly user: string;
    readonly password: string;
  };
  /** Text after ATRN ("" for bare ATRN). */
  readonly atrn: string;
  /** Reply line to RCPT TO:<address> (default `250 2.1.5 OK`). */
  readonly rcptReply?: (address: string) => string;
  /** Reply line after the n-th message's data (0-based; default `250 2.0.0 OK`). */
  readonly dataReply?: (index: number) => string;
  /** Awaited before the reply to the n-th message's data (0-based): the provider waits. */
  readonly beforeDataReply?: (index: number) => Promise<void>;
  /** Offer no PIPELINING: the provider sends one command at a time. */
  readonly noPipelining?: boolean;
  /** Close the connection after this many body bytes of the first message (mid-DATA drop). */
  readonly dropAfterBodyBytes?: number;
  /** Offer CHUNKING and take BDAT (RFC 3030): the provider may then keep several messages in flight. */
  readonly chunking?: boolean;
  /** Stop reading entirely after the 250 to ATRN, without a greeting (a stuck customer). */
  readonly silentAfterAtrn?: boolean;
  readonly timeoutMs?: number;
}

export interface CustomerResult {
  /** Every line sent (`C: `) and received (`S: `), AUTH payloads included. */
  readonly transcript: string[];
  readonly ehlo: string[];
  /** The final line of the reply to AUTH, or undefined if none was tried. */
  readonly authReply?: string | undefined;
  /** The final line of the reply to ATRN, or undefined if not reached. */
  readonly atrnReply?: string | undefined;
  readonly messages: ReceivedMessage[];
  /** The provider sent QUIT. */
  readonly sawQuit: boolean;
}

class Wire {
  #conn: Deno.Conn;
  #buf = new Uint8Array(0);
  readonly transcript: string[] = [];
  readonly timeoutMs: number;

  constructor(conn: Deno.Conn, timeoutMs: number) {
    this.#conn = conn;
    this.timeoutMs = timeoutMs;
  }

  set conn(c: Deno.Conn) {
    this.#conn = c;
  }

  async #fill(): Promise<boolean> {
    const chunk = new Uint8Array(65536);
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<null>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error("scripted customer: read timed out")),
        this.timeoutMs,
      );
    });
    try {
      const n = await Promise.race([this.#conn.read(chunk), timeout]);
      if (n === null) return false;
      const merged = new Uint8Array(this.#buf.length + n);
      merged.set(this.#buf);
      merged.set(chunk.subarray(0, n), this.#buf.length);
      this.#buf = merged;
      return true;
    } finally {
      clearTimeout(timer);
    }
  }

  /** One raw line including CRLF, or null at EOF. */
  async rawLine(): Promise<Uint8Array | null> {
    for (;;) {
      const i = this.#buf.indexOf(10);
      if (i >= 0) {
        const line = this.#buf.slice(0, i + 1);
        this.#buf = this.#buf.slice(i + 1);
        return line;
      }
      if (!(await this.#fill())) return null;
    }
  }

  async line(): Promise<string | null> {
    const raw = await this.rawLine();
    if (raw === null) return null;
    const text = dec.decode(raw).replace(/\r\n$/, "");
    this.transcript.push(`S: ${text}`);
    return text;
  }

  /** Reads a whole (multi-line) reply; returns its lines. */
  async reply(): Promise<string[]> {
    const lines: string[] = [];
    for (;;) {
      const l = await this.line();
      if (l === null) throw new Error(`scripted customer: connection closed after ${lines}`);
      lines.push(l);
      if (l[3] !== "-") return lines;
    }
  }

  async send(text: string): Promise<void> {
    this.transcript.push(`C: ${text}`);
    await this.write(enc.encode(text + "\r\n"));
  }

  async write(bytes: Uint8Array): Promise<void> {
    let off = 0;
    while (off < bytes.length) off += await this.#conn.write(bytes.subarray(off));
  }

  /** Exactly `n` bytes, or null at EOF. */
  async exact(n: number): Promise<Uint8Array | null> {
    while (this.#buf.length < n) if (!(await this.#fill())) return null;
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  get buffered(): number {
    return this.#buf.length;
  }
}

/** Runs the script against a provider; never leaves the connection open. */
export async function runScriptedCustomer(script: CustomerScript): Promise<CustomerResult> {
  const hostname = script.host ?? "127.0.0.1";
  const timeoutMs = script.timeoutMs ?? 20_000;
  let conn: Deno.Conn;
  if (script.tls === "implicit") {
    conn = await Deno.connectTls({
      hostname,
      port: script.port,
      ...(script.caCerts ? { caCerts: script.caCerts } : {}),
    });
  } else {
    const tcp = await Deno.connect({ hostname, port: script.port });
    // Without TCP_NODELAY each small reply waits for the peer's delayed ACK (~40 ms a message).
    tcp.setNoDelay(true);
    conn = tcp;
  }
  const wire = new Wire(conn, timeoutMs);
  const result: {
    ehlo: string[];
    authReply?: string | undefined;
    atrnReply?: string | undefined;
    messages: ReceivedMessage[];
    sawQuit: boolean;
  } = { ehlo: [], messages: [], sawQuit: false };
  try {
    await wire.reply(); // 220
    await wire.send("EHLO customer.example");
    result.ehlo = await wire.reply();
    if (script.tls === "starttls") {
      await wire.send("STARTTLS");
      const r = await wire.reply();
      if (!r[0]?.startsWith("220")) throw new Error(`STARTTLS refused: ${r.join(" | ")}`);
      conn = await Deno.startTls(conn as Deno.TcpConn, {
        hostname: "localhost",
        ...(script.caCerts ? { caCerts: script.caCerts } : {}),
      });
      wire.conn = conn;
      await wire.send("EHLO customer.example");
      result.ehlo = await wire.reply();
    }
    if (script.auth) {
      result.authReply = await authenticate(wire, script.auth);
    }
    await wire.send(script.atrn === "" ? "ATRN" : `ATRN ${script.atrn}`);
    const atrn = await wire.reply();
    result.atrnReply = atrn[atrn.length - 1];
    if (!result.atrnReply?.startsWith("250")) return { transcript: wire.transcript, ...result };
    if (script.silentAfterAtrn) {
      // Say nothing and read nothing: the provider must time out on its own.
      await new Promise((r) => setTimeout(r, timeoutMs));
      return { transcript: wire.transcript, ...result };
    }
    await serveSmtp(wire, script, result);
  } finally {
    try {
      conn.close();
    } catch {
      // already closed by the peer or by a drop in the script
    }
  }
  return { transcript: wire.transcript, ...result };
}

async function authenticate(
  wire: Wire,
  auth: NonNullable<CustomerScript["auth"]>,
): Promise<string | undefined> {
  const b64 = (s: string | Uint8Array) => Buffer.from(s).toString("base64");
  const unb64 = (s: string) => Buffer.from(s, "base64").toString("latin1");
  if (auth.mechanism === "PLAIN") {
    await wire.send(`AUTH PLAIN ${b64(`\0${auth.user}\0${auth.password}`)}`);
    return (await wire.reply()).at(-1);
  }
  if (auth.mechanism === "CRAM-MD5") {
    await wire.send("AUTH CRAM-MD5");
    const ch = (await wire.reply()).at(-1) ?? "";
    if (!ch.startsWith("334 ")) return ch;
    const challenge = Buffer.from(ch.slice(4), "base64");
    const digest = createHmac("md5", auth.password).update(challenge).digest("hex");
    await wire.send(b64(`${auth.user} ${digest}`));
    return (await wire.reply()).at(-1);
  }
  // SCRAM-SHA-256 (RFC 5802 / 7677), computed here with node:crypto.
  const cnonce = randomBytes(18).toString("base64").replace(/[,=]/g, "x");
  const user = auth.user.replace(/=/g, "=3D").replace(/,/g, "=2C");
  const clientFirstBare = `n=${user},r=${cnonce}`;
  await wire.send(`AUTH SCRAM-SHA-256 ${b64(`n,,${clientFirstBare}`)}`);
  const first = (await wire.reply()).at(-1) ?? "";
  if (!first.startsWith("334 ")) return first;
  const serverFirst = unb64(first.slice(4));
  const attrs = new Map(serverFirst.split(",").map((kv) => [kv[0], kv.slice(2)]));
  const nonce = attrs.get("r") ?? "";
  const salt = Buffer.from(attrs.get("s") ?? "", "base64");
  const iterations = Number(attrs.get("i"));
  const salted = pbkdf2Sync(auth.password, salt, iterations, 32, "sha256");
  const clientKey = createHmac("sha256", salted).update("Client Key").digest();
  const storedKey = createHash("sha256").update(clientKey).digest();
  const withoutProof = `c=biws,r=${nonce}`;
  const authMessage = `${clientFirstBare},${serverFirst},${withoutProof}`;
  const clientSig = createHmac("sha256", storedKey).update(authMessage).digest();
  const proof = Buffer.alloc(32);
  for (let i = 0; i < 32; i++) proof[i] = (clientKey[i] ?? 0) ^ (clientSig[i] ?? 0);
  await wire.send(b64(`${withoutProof},p=${proof.toString("base64")}`));
  const fin = (await wire.reply()).at(-1) ?? "";
  if (!fin.startsWith("334 ")) return fin;
  const serverKey = createHmac("sha256", salted).update("Server Key").digest();
  const expected = createHmac("sha256", serverKey).update(authMessage).digest("base64");
  if (unb64(fin.slice(4)) !== `v=${expected}`) throw new Error("server signature mismatch");
  await wire.send("");
  return (await wire.reply()).at(-1);
}

async function serveSmtp(
  wire: Wire,
  script: CustomerScript,
  result: { messages: ReceivedMessage[]; sawQuit: boolean },
): Promise<void> {
  await wire.send("220 customer.example ESMTP ready");
  let mailFrom: string | undefined;
  let rcpts: string[] = [];
  let chunks: Uint8Array[] = [];
  for (;;) {
    const line = await wire.line();
    if (line === null) return;
    const verb = line.split(" ")[0]?.toUpperCase() ?? "";
    if (verb === "EHLO") {
      await wire.send("250-customer.example");
      if (script.noPipelining !== true) await wire.send("250-PIPELINING");
      if (script.chunking === true) await wire.send("250-CHUNKING");
      await wire.send("250-8BITMIME");
      await wire.send("250-ENHANCEDSTATUSCODES");
      await wire.send("250 SIZE 0");
    } else if (verb === "MAIL") {
      mailFrom = /<([^>]*)>/.exec(line)?.[1] ?? "";
      rcpts = [];
      await wire.send("250 2.1.0 OK");
    } else if (verb === "RCPT") {
      const addr = /<([^>]*)>/.exec(line)?.[1] ?? "";
      const r = script.rcptReply?.(addr) ?? "250 2.1.5 OK";
      if (r.startsWith("2")) rcpts.push(addr);
      await wire.send(r);
    } else if (verb === "DATA") {
      if (rcpts.length === 0) {
        await wire.send("554 5.5.1 No valid recipients");
        continue;
      }
      await wire.send("354 Go ahead");
      const data = await readBody(wire, script.dropAfterBodyBytes);
      if (data === null) return; // dropped mid-DATA on purpose, or EOF
      const index = result.messages.length;
      result.messages.push({ mailFrom: mailFrom ?? "", rcpts, data });
      await script.beforeDataReply?.(index);
      await wire.send(script.dataReply?.(index) ?? "250 2.0.0 OK");
    } else if (verb === "BDAT" && script.chunking === true) {
      const m = /^BDAT (\d+)( LAST)?$/i.exec(line);
      const chunk = await wire.exact(Number(m?.[1] ?? 0));
      if (chunk === null) return;
      chunks.push(chunk);
      if (m?.[2] === undefined) {
        await wire.send(`250 2.0.0 ${chunk.length} octets`);
        continue;
      }
      const data = concatBytes(chunks);
      chunks = [];
      if (rcpts.length === 0 || mailFrom === undefined) {
        await wire.send("554 5.5.1 No valid recipients");
        continue;
      }
      const index = result.messages.length;
      result.messages.push({ mailFrom, rcpts, data });
      mailFrom = undefined;
      await wire.send(script.dataReply?.(index) ?? "250 2.0.0 OK");
    } else if (verb === "RSET" || verb === "NOOP") {
      chunks = [];
      await wire.send("250 2.0.0 OK");
    } else if (verb === "QUIT") {
      result.sawQuit = true;
      await wire.send("221 2.0.0 bye");
      return;
    } else {
      await wire.send("502 5.5.1 not implemented");
    }
  }
}

/** Reads dot-stuffed lines to CRLF.CRLF and returns the unstuffed body, or null on drop/EOF. */
async function readBody(wire: Wire, dropAfter: number | undefined): Promise<Uint8Array | null> {
  const parts: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const raw = await wire.rawLine();
    if (raw === null) return null;
    if (raw.length === 3 && raw[0] === 46 && raw[1] === 13) break;
    const line = raw[0] === 46 ? raw.subarray(1) : raw;
    parts.push(line);
    size += line.length;
    if (dropAfter !== undefined && size >= dropAfter) return null;
  }
  return concatBytes(parts);
}
