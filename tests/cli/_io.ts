/**
 * The command tests' window on the world: a fake CliIo that keeps what a command wrote (text,
 * and the bytes of `queue show --body`), answers stdin from a list, and names the target
 * (a data directory, with a PostgreSQL database when `storage` says so).
 */
import type { CliIo, StorageChoice } from "../../src/cli/io.ts";

/** A CliIo that keeps what was written. */
export interface RecordingIo extends CliIo {
  out: string;
  err: string;
  /** Everything given to writeStdout, in order (only with `acceptsBinary`). */
  bytes: Uint8Array[];
}

/** Where the commands under test find the queue and the users. */
export interface QueueTarget {
  readonly dataDir: string;
  /** Absent: SQLite in `dataDir`. */
  readonly storage?: StorageChoice;
}

/** A data directory alone means SQLite. */
export type Where = string | QueueTarget;

/** The target `where` names. */
export function targetOf(where: Where): QueueTarget {
  return typeof where === "string" ? { dataDir: where } : where;
}

/** How the fake answers. */
export interface RecordingIoOptions {
  readonly isTty?: boolean;
  /** The stdin lines, in order; then end of input. */
  readonly answers?: readonly string[];
  /** Keep binary output in `bytes`; without it, binary output fails the command's write. */
  readonly acceptsBinary?: boolean;
}

/** A fake CliIo over the target. */
export function recordingIo(where: Where, opts: RecordingIoOptions = {}): RecordingIo {
  const { dataDir, storage } = targetOf(where);
  const answers = [...(opts.answers ?? [])];
  const io: RecordingIo = {
    out: "",
    err: "",
    bytes: [],
    stdout(text) {
      io.out += text;
    },
    stderr(text) {
      io.err += text;
    },
    writeStdout(bytes) {
      if (opts.acceptsBinary !== true) {
        return Promise.reject(new Error("unexpected binary output"));
      }
      io.bytes.push(bytes.slice());
      return Promise.resolve();
    },
    isTty: opts.isTty ?? false,
    readStdinLine: () => Promise.resolve(answers.shift() ?? null),
    dataDir,
    ...(storage === undefined ? {} : { storage }),
  };
  return io;
}
