/**
 * What the `user` and `queue` commands need from their surroundings: output streams (text, and
 * raw bytes for `queue show --body`), a TTY flag for confirmations, one line of stdin, and the
 * data directory. Tests pass fakes.
 */

/** The command's window on the world, built by the CLI from the loaded config. */
export interface CliIo {
  stdout(text: string): void;
  stderr(text: string): void;
  /** Writes bytes to stdout unchanged (a stored message); resolves once they are written. */
  writeStdout(bytes: Uint8Array): Promise<void>;
  /** Whether stdin is a terminal (then destructive commands ask first). */
  readonly isTty: boolean;
  /** One line of stdin without its line ending, or null at end of input. */
  readStdinLine(): Promise<string | null>;
  /** `data_dir` from the config. */
  readonly dataDir: string;
  /** `queue.backend` and `queue.postgres` from the config; absent: SQLite in `dataDir`. */
  readonly storage?: StorageChoice;
}

/** Where the queue and the users live (config `queue.backend`, `queue.postgres`). */
export interface StorageChoice {
  readonly backend: "sqlite" | "postgres";
  readonly postgres:
    | { readonly url: string; readonly passwordFile: string | undefined }
    | undefined;
}
