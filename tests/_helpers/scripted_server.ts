/**
 * An in-memory scripted SMTP/LMTP server for sender tests: reads command lines and DATA bodies
 * with the real LineReader over a connPair end, answers from defaults or a script, and records
 * what it got (command lines, un-stuffed bodies, body faults). One reply per command, written
 * as soon as the command is read (a valid PIPELINING server).
 */
import { LineReader } from "../../src/wire/line_reader.ts";
import { concatBytes } from "../../src/wire/bytes.ts";
import type { DataFault } from "../../src/wire/data_decoder.ts";
import type { Conn } from "../../src/net/conn.ts";

/**
 * How to answer: reply text (lines separated by "\n", CRLF added), or an object that may also
 * close the connection after the reply, or say nothing at all (to make the client time out).
 */
export type ServerAction =
  | string
  | { readonly reply?: string; readonly close?: boolean; readonly silent?: boolean };

/** What the script can see when it decides. */
export interface ServerView {
  /** Recipients accepted (2xx) in the current transaction, in order. */
  readonly accepted: readonly string[];
  /** Number of MAIL commands seen so far (1 for the first). */
  readonly mailCount: number;
}

/** The script. Anything left out gets a plain, positive default. */
export interface ScriptedServerOptions {
  /** The greeting; null sends none. Default "220 mx.test ESMTP". */
  readonly greeting?: string | null;
  /** EHLO/LHLO keywords. Default PIPELINING, 8BITMIME, SIZE 10485760, ENHANCEDSTATUSCODES. */
  readonly extensions?: readonly string[];
  /** LMTP: after the body, one default reply per accepted recipient. */
  readonly lmtp?: boolean;
  /** Overrides the answer to one command line (the verb is upper-cased in `verb`). */
  readonly on?: (command: string, verb: string, view: ServerView) => ServerAction | undefined;
  /** Overrides the answer after the body (LMTP: give all replies, "\n"-separated). */
  readonly afterData?: (body: Uint8Array, view: ServerView) => ServerAction | undefined;
}

/** A running scripted server and what it recorded. */
export interface ScriptedServer {
  /** Command lines as received, without CRLF. */
  readonly commands: string[];
  /** Un-stuffed bodies of completed DATA phases. */
  readonly bodies: Uint8Array[];
  /** Faults the receiver-side decoder found in bodies. */
  readonly bodyFaults: DataFault[];
  /** True if the client closed while a body was being read. */
  readonly sawEofInData: boolean;
  /** Resolves when the server loop ends (QUIT, close, or end of stream). */
  readonly done: Promise<void>;
}

export const DEFAULT_EXTENSIONS = [
  "PIPELINING",
  "8BITMIME",
  "SIZE 10485760",
  "ENHANCEDSTATUSCODES",
] as const;

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Starts serving on `conn` (the server end of a connPair, or an accepted socket). */
export function startScriptedServer(
  conn: Conn,
  opts: ScriptedServerOptions = {},
): ScriptedServer {
  const state = {
    commands: [] as string[],
    bodies: [] as Uint8Array[],
    bodyFaults: [] as DataFault[],
    sawEofInData: false,
    done: Promise.resolve(),
  };
  state.done = serve(conn, opts, state);
  return state;
}

async function serve(
  conn: Conn,
  opts: ScriptedServerOptions,
  rec: { commands: string[]; bodies: Uint8Array[]; bodyFaults: DataFault[]; sawEofInData: boolean },
): Promise<void> {
  const reader = new LineReader(conn);
  let accepted: string[] = [];
  let mailCount = 0;
  const view = (): ServerView => ({ accepted: [...accepted], mailCount });
  /** Writes the action's reply; false when the loop must end. */
  const act = async (action: ServerAction): Promise<{ go: boolean; code: number }> => {
    const a = typeof action === "string" ? { reply: action } : action;
    if (a.silent) return { go: true, code: 0 };
    let code = 0;
    if (a.reply !== undefined) {
      code = Number(a.reply.slice(0, 3));
      await conn.write(enc.encode(a.reply.split("\n").map((l) => `${l}\r\n`).join("")));
    }
    if (a.close) {
      await conn.close();
      return { go: false, code };
    }
    return { go: true, code };
  };

  if (opts.greeting !== null) {
    if (!(await act(opts.greeting ?? "220 mx.test ESMTP")).go) return;
  }
  for (;;) {
    const line = await reader.readLine(4096);
    if (line.kind === "eof") return;
    if (line.kind !== "line") {
      if (!(await act("500 5.5.2 Bad line")).go) return;
      continue;
    }
    const command = dec.decode(line.line);
    rec.commands.push(command);
    const verb = (command.split(" ")[0] ?? "").toUpperCase();
    const override = opts.on?.(command, verb, view());
    const action = override ?? defaultAnswer(verb, opts);
    if (verb === "MAIL") {
      mailCount++;
      accepted = [];
    }
    if (verb === "RSET") accepted = [];
    const { go, code } = await act(action);
    if (verb === "RCPT" && code >= 200 && code < 300) {
      accepted.push(/<(.*)>/.exec(command)?.[1] ?? "");
    }
    if (!go) return;
    if (verb === "QUIT" && override === undefined) {
      await conn.close();
      return;
    }
    if (verb !== "DATA" || code !== 354) continue;

    const parts: Uint8Array[] = [];
    const result = await reader.readData(
      { maxMessageBytes: 64 * 1024 * 1024, maxLineBytes: 1000 },
      (chunk) => {
        parts.push(chunk.slice());
      },
    );
    if (result.kind === "eof") {
      rec.sawEofInData = true;
      return;
    }
    if (result.kind === "rejected") rec.bodyFaults.push(result.fault);
    const body = concatBytes(parts);
    rec.bodies.push(body);
    const after = opts.afterData?.(body, view()) ?? defaultAfterData(opts, view());
    accepted = [];
    if (!(await act(after)).go) return;
  }
}

function defaultAnswer(verb: string, opts: ScriptedServerOptions): ServerAction {
  switch (verb) {
    case "EHLO":
    case "LHLO": {
      const exts = opts.extensions ?? DEFAULT_EXTENSIONS;
      return ["mx.test greets you", ...exts].map((l, i, all) =>
        `250${i === all.length - 1 ? " " : "-"}${l}`
      ).join("\n");
    }
    case "HELO":
      return "250 mx.test";
    case "MAIL":
      return "250 2.1.0 OK";
    case "RCPT":
      return "250 2.1.5 OK";
    case "DATA":
      return "354 Go ahead";
    case "RSET":
    case "NOOP":
      return "250 2.0.0 OK";
    case "QUIT":
      return "221 2.0.0 Bye";
    default:
      return "500 5.5.1 Unknown command";
  }
}

function defaultAfterData(opts: ScriptedServerOptions, view: ServerView): ServerAction {
  if (!opts.lmtp) return "250 2.0.0 Queued";
  return view.accepted.map((a) => `250 2.1.5 <${a}> delivered`).join("\n");
}
