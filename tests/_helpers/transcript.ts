/**
 * Transcript tests (#12): a dialogue in a readable text file, played against our real code.
 *
 * File format, one line each:
 * - `# …` is a comment (the reason, or the RFC section); blank lines are ignored.
 * - `X: text` is one protocol line (CRLF is added) said by side `X`. The sides are
 *   `C:`/`S:` (SMTP client and server) or `P:`/`C:` (ODMR provider and customer: the
 *   provider speaks first as the server and, after `ATRN` and its `250`, as the client).
 * - The runner is told which letter it plays (`ours`); every other letter is our code.
 *   Its own lines are sent as written, consecutive ones in ONE write (so a run of them is a
 *   pipelined batch). The other side's lines are read one by one and must match exactly,
 *   except that `{anything}` matches any text on that line (challenges, ids, host names);
 *   the word inside the braces is only a label for the reader.
 * - In a line the runner sends, `{cram-md5 USER PASSWORD}` stands for the CRAM-MD5 response
 *   (RFC 2195) to the last `334` challenge read.
 * - A runner line that is exactly `{starttls}` is not sent: the runner starts TLS there (the
 *   caller's `startTls`), after checking that the peer sent nothing after its last line.
 * - When the file ends, the other side must close the connection without saying more.
 */
import { createHmac } from "node:crypto";
import type { Conn } from "../../src/net/conn.ts";
import { LineReader } from "../../src/wire/line_reader.ts";

const enc = new TextEncoder();
const STARTTLS = "{starttls}";
const dec = new TextDecoder();

/** One protocol line of a transcript. */
export interface TranscriptLine {
  readonly side: string;
  readonly text: string;
  /** 1-based line number in the file, for messages. */
  readonly lineNo: number;
}

/** Parses a transcript; throws on a line that is neither a comment nor `X: text`. */
export function parseTranscript(source: string): TranscriptLine[] {
  const out: TranscriptLine[] = [];
  source.split("\n").forEach((raw, i) => {
    const line = raw.replace(/\r$/, "");
    if (line.trim() === "" || line.startsWith("#")) return;
    const m = /^([A-Z]): ?(.*)$/.exec(line);
    if (!m) throw new Error(`transcript line ${i + 1}: expected "X: text" or "# comment"`);
    out.push({ side: m[1]!, text: m[2]!, lineNo: i + 1 });
  });
  return out;
}

/** Does `got` match the expected line (`{…}` matches any text)? */
export function lineMatches(expected: string, got: string): boolean {
  const parts = expected.split(/\{[^}]*\}/);
  const pattern = parts.map((p) => p.replace(/[.*+?^$()|[\]\\{}]/g, "\\$&")).join(".*");
  return new RegExp(`^${pattern}$`, "s").test(got);
}

function substitute(text: string, lastChallenge: string | undefined): string {
  return text.replace(/\{cram-md5 (\S+) (\S+)\}/g, (_all, user: string, password: string) => {
    if (lastChallenge === undefined) throw new Error("{cram-md5 …} before any 334 challenge");
    const challenge = atob(lastChallenge);
    const digest = createHmac("md5", password).update(challenge).digest("hex");
    return btoa(`${user} ${digest}`);
  });
}

/**
 * Plays the `ours` lines of `source` over `conn` and checks the others. Throws an Error that
 * names the file line and shows the dialogue so far on the first difference.
 */
export async function playTranscript(
  source: string,
  conn: Conn,
  ours: string,
  timeoutMs = 5_000,
  hooks: { readonly startTls?: (conn: Conn) => Promise<void> } = {},
): Promise<void> {
  const lines = parseTranscript(source);
  const reader = new LineReader(conn);
  const seen: string[] = [];
  let lastChallenge: string | undefined;
  const fail = async (why: string): Promise<never> => {
    // What the peer says next (briefly), to help write the expected lines.
    for (let n = 0; n < 20; n++) {
      const r = await reader.readLine(65_536, 200).catch(() => undefined);
      if (r?.kind !== "line") break;
      seen.push(`(after the difference) ${dec.decode(r.line)}`);
    }
    throw new Error(`${why}\n--- dialogue so far ---\n${seen.join("\n")}`);
  };
  const readOne = async (): Promise<string | undefined> => {
    let r;
    try {
      r = await reader.readLine(65_536, timeoutMs);
    } catch (err) {
      return await fail(`no line within ${timeoutMs} ms (${(err as Error).message})`);
    }
    if (r.kind === "eof") return undefined;
    if (r.kind !== "line") return await fail(`bad line from peer: ${r.kind}`);
    return dec.decode(r.line);
  };

  for (let i = 0; i < lines.length;) {
    const line = lines[i]!;
    if (line.side === ours && line.text === STARTTLS) {
      if (hooks.startTls === undefined) throw new Error(`line ${line.lineNo}: no startTls hook`);
      if (reader.bufferedBytes > 0) {
        await fail(`line ${line.lineNo}: the peer sent more before the TLS handshake`);
      }
      seen.push(`${ours}: (TLS handshake)`);
      await hooks.startTls(conn);
      i++;
      continue;
    }
    if (line.side === ours) {
      const batch: string[] = [];
      while (i < lines.length && lines[i]!.side === ours && lines[i]!.text !== STARTTLS) {
        batch.push(substitute(lines[i]!.text, lastChallenge));
        i++;
      }
      for (const b of batch) seen.push(`${ours}: ${b}`);
      await conn.write(enc.encode(batch.map((b) => `${b}\r\n`).join("")));
      continue;
    }
    const got = await readOne();
    if (got === undefined) await fail(`line ${line.lineNo}: wanted "${line.text}", peer closed`);
    seen.push(`${line.side}: ${got}`);
    if (!lineMatches(line.text, got!)) {
      await fail(
        `line ${line.lineNo}: wanted "${line.side}: ${line.text}"\n            got "${got}"`,
      );
    }
    const challenge = /^334 (\S+)$/.exec(got!);
    if (challenge) lastChallenge = challenge[1];
    i++;
  }
  const extra = await readOne();
  if (extra !== undefined) {
    await fail(`after the last line: unexpected "${extra}" (wanted a close)`);
  }
}
