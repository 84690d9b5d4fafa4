/**
 * Maildir delivery (`maildir:/path`) as a MessageSink: the body streams into `tmp/` with a
 * unique name, CRLF becomes LF (the Maildir convention, README.md), then fsync, rename into
 * `new/`, fsync of `new/`. Only after that does DATA get its 250, so nothing partial is ever
 * visible in `new/` and nothing acknowledged is lost. One file per message: every recipient
 * of a transaction lands in this one mailbox, so it gets one copy with one `Delivered-To:`
 * line per recipient.
 */
import type { MailFrom, MessageSink, RcptTo, SessionInfo, SinkTransaction } from "../sink.ts";
import { reply } from "../../wire/reply.ts";
import type { Reply } from "../../wire/reply.ts";
import type { Logger } from "../../observe/log.ts";
import { NULL_LOGGER } from "../../observe/log.ts";
import { errorText } from "../../errors.ts";

/** Bytes gathered before one write to the file. */
const WRITE_BUFFER_BYTES = 64 * 1024;
const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

const CR = 13;
const LF = 10;
const encoder = new TextEncoder();

/** Options of a Maildir sink. */
export interface MaildirSinkOptions {
  /** The Maildir root (holds `tmp/`, `new/`, `cur/`; created when missing). */
  readonly path: string;
  /** Host part of the unique file names. */
  readonly hostname: string;
  readonly log?: Logger;
}

/** Delivers each transaction into one Maildir. */
export class MaildirSink implements MessageSink {
  readonly #opts: MaildirSinkOptions;
  readonly #log: Logger;
  #ready: Promise<void> | undefined;

  constructor(opts: MaildirSinkOptions) {
    this.#opts = opts;
    this.#log = opts.log ?? NULL_LOGGER;
  }

  /** Creates `tmp/ new/ cur/` (mode 0700) once. */
  #ensureDirs(): Promise<void> {
    this.#ready ??= (async () => {
      for (const sub of ["", "/tmp", "/new", "/cur"]) {
        await Deno.mkdir(this.#opts.path + sub, { recursive: true, mode: DIR_MODE });
      }
    })().catch((err) => {
      this.#ready = undefined; // try again for the next message
      throw err;
    });
    return this.#ready;
  }

  async begin(mail: MailFrom, _session: SessionInfo): Promise<SinkTransaction | Reply> {
    try {
      await this.#ensureDirs();
    } catch (err) {
      this.#log.error("maildir_unavailable", { path: this.#opts.path, error: errorText(err) });
      return replyForError(err);
    }
    return new MaildirTransaction(this.#opts, this.#log, mail);
  }
}

let sequence = 0;

/** `time.MusecPpidQseqRrand.host` (the qmail/Dovecot uniqueness recipe). */
export function uniqueMaildirName(hostname: string, now = Date.now()): string {
  const seconds = Math.floor(now / 1000);
  const micros = (now % 1000) * 1000 + Math.floor(Math.random() * 1000);
  const rand = crypto.getRandomValues(new Uint8Array(4));
  const hex = Array.from(rand, (b) => b.toString(16).padStart(2, "0")).join("");
  // `/` and `:` cannot appear in the host part (Maildir spec): escape them as octal.
  const host = hostname.replaceAll("/", "\\057").replaceAll(":", "\\072");
  return `${seconds}.M${micros}P${Deno.pid}Q${++sequence}R${hex}.${host}`;
}

class MaildirTransaction implements SinkTransaction {
  readonly id: string;
  readonly #opts: MaildirSinkOptions;
  readonly #log: Logger;
  readonly #mail: MailFrom;
  readonly #recipients: string[] = [];
  #file: Deno.FsFile | undefined;
  #tmpPath: string | undefined;
  #buffer = new Uint8Array(WRITE_BUFFER_BYTES);
  #buffered = 0;
  /** The previous chunk ended in CR: drop it if the next byte is LF. */
  #pendingCr = false;
  #error: unknown;
  #done = false;

  constructor(opts: MaildirSinkOptions, log: Logger, mail: MailFrom) {
    this.#opts = opts;
    this.#mail = mail;
    this.id = uniqueMaildirName(opts.hostname);
    this.#log = log.with({ tx: this.id });
  }

  addRecipient(rcpt: RcptTo): Promise<Reply> {
    this.#recipients.push(rcpt.address);
    return Promise.resolve(reply(250, "2.1.5", "Recipient OK"));
  }

  async #open(): Promise<void> {
    if (this.#file !== undefined) return;
    this.#tmpPath = `${this.#opts.path}/tmp/${this.id}`;
    this.#file = await Deno.open(this.#tmpPath, {
      write: true,
      createNew: true,
      mode: FILE_MODE,
    });
    let head = `Return-Path: <${this.#mail.address}>\n`;
    for (const r of this.#recipients) head += `Delivered-To: ${r}\n`;
    await this.#append(encoder.encode(head));
  }

  async #append(bytes: Uint8Array): Promise<void> {
    if (this.#buffered + bytes.length > this.#buffer.length) await this.#flush();
    if (bytes.length >= this.#buffer.length) {
      await writeAll(this.#file as Deno.FsFile, bytes); // opened in #open before any append
      return;
    }
    this.#buffer.set(bytes, this.#buffered);
    this.#buffered += bytes.length;
  }

  async #flush(): Promise<void> {
    if (this.#buffered === 0 || this.#file === undefined) return;
    await writeAll(this.#file, this.#buffer.subarray(0, this.#buffered));
    this.#buffered = 0;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.#error !== undefined || this.#done) return;
    try {
      await this.#open();
      await this.#writeLf(chunk);
    } catch (err) {
      this.#error = err;
    }
  }

  /** Appends `chunk` with every CRLF turned into LF; a CR split from its LF is held back. */
  async #writeLf(chunk: Uint8Array): Promise<void> {
    let start = 0;
    if (this.#pendingCr) {
      this.#pendingCr = false;
      if (chunk[0] !== LF) await this.#append(Uint8Array.of(CR));
    }
    for (;;) {
      const cr = chunk.indexOf(CR, start);
      if (cr < 0) {
        if (start < chunk.length) await this.#append(chunk.subarray(start));
        return;
      }
      if (cr === chunk.length - 1) {
        if (cr > start) await this.#append(chunk.subarray(start, cr));
        this.#pendingCr = true;
        return;
      }
      if (chunk[cr + 1] === LF) {
        if (cr > start) await this.#append(chunk.subarray(start, cr));
        start = cr + 1; // the LF starts the next segment
      } else {
        await this.#append(chunk.subarray(start, cr + 1)); // a lone CR stays
        start = cr + 1;
      }
    }
  }

  async finish(): Promise<Reply> {
    if (this.#done) return reply(451, "4.3.0", "Transaction already closed");
    try {
      if (this.#error !== undefined) throw this.#error;
      await this.#open(); // an empty body still makes a file
      if (this.#pendingCr) await this.#append(Uint8Array.of(CR));
      this.#pendingCr = false;
      await this.#flush();
      const file = this.#file as Deno.FsFile; // set by #open above
      await file.sync();
      file.close();
      this.#file = undefined;
      const newPath = `${this.#opts.path}/new/${this.id}`;
      await Deno.rename(this.#tmpPath as string, newPath); // set by #open above
      this.#tmpPath = undefined;
      await syncDir(`${this.#opts.path}/new`);
      this.#done = true;
      this.#log.info("maildir_delivered", {
        path: newPath,
        from: this.#mail.address,
        recipients: this.#recipients.join(","),
      });
      return reply(250, "2.0.0", `Delivered as ${this.id}`);
    } catch (err) {
      this.#log.error("maildir_failed", { path: this.#opts.path, error: errorText(err) });
      await this.abort();
      return replyForError(err);
    }
  }

  async abort(): Promise<void> {
    this.#done = true;
    if (this.#file !== undefined) {
      try {
        this.#file.close();
      } catch { /* already closed */ }
      this.#file = undefined;
    }
    if (this.#tmpPath !== undefined) {
      const p = this.#tmpPath;
      this.#tmpPath = undefined;
      await Deno.remove(p).catch(() => {});
    }
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let at = 0;
  while (at < bytes.length) at += await file.write(bytes.subarray(at));
}

/** Makes a rename durable (POSIX: the directory entry needs its own fsync). */
async function syncDir(path: string): Promise<void> {
  const dir = await Deno.open(path, { read: true });
  try {
    await dir.sync();
  } finally {
    dir.close();
  }
}

/** A full disk is "insufficient storage"; every other failure is temporary (docs/architecture.md "Conventions"). */
function replyForError(err: unknown): Reply {
  if (err instanceof Error && /ENOSPC|No space left|quota/i.test(err.message)) {
    return reply(452, "4.3.1", "Insufficient system storage");
  }
  return reply(451, "4.3.0", "Local error in processing, try again later");
}
