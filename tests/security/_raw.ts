/**
 * A raw byte-level client for attack tests (node:net, independent of src/): writes exact bytes,
 * can bind a chosen loopback source address (127.0.0.2 …) for per-IP tests, reads whole replies
 * with a deadline, and tells when the server closed. Never leaves a socket open after close().
 * Also the client's side of a greeting and of AUTH CRAM-MD5, which most attacks start with.
 */
import net from "node:net";
import { match as assertMatch } from "node:assert/strict";
import { createHmac } from "node:crypto";
import { Buffer } from "node:buffer";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** One raw connection. */
export class RawClient {
  readonly #socket: net.Socket;
  #buf = "";
  #ended = false;
  #waiter: (() => void) | undefined;

  private constructor(socket: net.Socket) {
    this.#socket = socket;
    socket.on("data", (d: Uint8Array) => {
      this.#buf += dec.decode(d);
      this.#wake();
    });
    socket.on("end", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("close", () => {
      this.#ended = true;
      this.#wake();
    });
    socket.on("error", () => {
      this.#ended = true;
      this.#wake();
    });
  }

  #wake(): void {
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.();
  }

  /** Connects (optionally from `localAddress`). */
  static connect(port: number, localAddress?: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({
        host: "127.0.0.1",
        port,
        ...(localAddress ? { localAddress } : {}),
      });
      socket.setNoDelay(true);
      socket.once("connect", () => {
        socket.off("error", reject);
        resolve(new RawClient(socket));
      });
      socket.once("error", reject);
    });
  }

  /** The server closed (or the socket failed). */
  get isClosed(): boolean {
    return this.#ended;
  }

  /** Everything received and not yet consumed as a reply. */
  get pending(): string {
    return this.#buf;
  }

  /** Writes bytes or text as is (CRLF written out by the caller). */
  write(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? enc.encode(data) : data;
    return new Promise((resolve) => {
      if (this.#ended || this.#socket.destroyed) return resolve();
      this.#socket.write(bytes, () => resolve());
    });
  }

  /**
   * Reads one whole reply and returns its last line; "" when the server closed without one,
   * throws when nothing arrived within `timeoutMs`.
   */
  async reply(timeoutMs = 10_000): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const lines = this.#buf.split("\r\n");
      for (let i = 0; i < lines.length - 1; i++) {
        const l = lines[i] as string;
        if (/^\d{3}(?: |$)/.test(l)) {
          this.#buf = lines.slice(i + 1).join("\r\n");
          return l;
        }
      }
      if (this.#ended) return "";
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no reply within ${timeoutMs} ms; have ${this.#buf}`);
      await this.#waitFor(left);
    }
  }

  /** Resolves once more bytes or the end came (#waiter), or after `ms`. */
  #waitFor(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#waiter = undefined;
        resolve();
      }, ms);
      this.#waiter = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  /** Sends one line and reads its reply. */
  async command(line: string, timeoutMs?: number): Promise<string> {
    await this.write(`${line}\r\n`);
    return await this.reply(timeoutMs);
  }

  /** Waits until the server closes; false if it did not within `timeoutMs`. */
  async waitClosed(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (!this.#ended) {
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await this.#waitFor(left);
    }
    return true;
  }

  /** Stops reading: the kernel buffers fill and the server's writes block (a stuck peer). */
  pause(): void {
    this.#socket.pause();
  }

  close(): void {
    this.#socket.destroy();
  }

  /** `using c = …` closes the connection at the end of the block. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Connects (from `localAddress` when given), reads the 220 greeting and says EHLO `helo`. */
export async function greeted(
  port: number,
  localAddress?: string,
  helo = "customer.test",
): Promise<RawClient> {
  const c = await RawClient.connect(port, localAddress);
  try {
    assertMatch(await c.reply(), /^220 /);
    assertMatch(await c.command(`EHLO ${helo}`), /^250 /);
    return c;
  } catch (e) {
    c.close();
    throw e;
  }
}

/** The CRAM-MD5 response (RFC 2195), base64, to a `334 <base64 challenge>` reply line. */
export function cramResponse(challengeReply: string, user: string, password: string): string {
  const challenge = Buffer.from(challengeReply.slice(4), "base64");
  const digest = createHmac("md5", password).update(challenge).digest("hex");
  return Buffer.from(`${user} ${digest}`).toString("base64");
}

/**
 * AUTH CRAM-MD5 on `c` (the server must answer 334); returns the final reply and the response
 * line sent: `response` when given (a replayed or forged one), else the right one.
 */
export async function cram(
  c: RawClient,
  user: string,
  password: string,
  response?: string,
): Promise<{ reply: string; sent: string }> {
  const ch = await c.command("AUTH CRAM-MD5");
  assertMatch(ch, /^334 /);
  const sent = response ?? cramResponse(ch, user, password);
  return { reply: await c.command(sent), sent };
}

/** Resident memory of a process in KiB (Linux /proc), or undefined elsewhere. */
export async function rssKib(pid: number): Promise<number | undefined> {
  try {
    const status = await Deno.readTextFile(`/proc/${pid}/status`);
    const m = /^VmRSS:\s+(\d+)/m.exec(status);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}
