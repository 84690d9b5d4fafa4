/**
 * The provider of the ODMR end-to-end tests (odmr_provider_test, fetch_e2e_test,
 * fetchmail_test): the real `serve` with two users, alice (example.org and example.com,
 * password alice-pw) and bob (bob.example, bob-pw), stopped and its files removed afterwards;
 * and the mail those tests queue and look for.
 */
import { addUser, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";

const enc = new TextEncoder();

/** Runs `fn` on a fresh `serve` (its config plus `config`) that knows alice and bob. */
export async function withProvider(
  fn: (server: ServerProcess) => Promise<void>,
  config: Record<string, unknown> = {},
): Promise<void> {
  const server = await startServer({ config });
  try {
    await addUser(server.configPath, "alice", ["example.org", "example.com"], "alice-pw");
    await addUser(server.configPath, "bob", ["bob.example"], "bob-pw");
    await fn(server);
  } finally {
    await server.stop();
    await removeTestFiles(server);
  }
}

/** What `queue list --json` prints, as far as these tests read it. */
export type Listed = {
  id: string;
  from: string;
  recipients: { address: string; status: string; route: string }[];
}[];

/** A latin1 body (BODY=8BITMIME) with bytes over 0x7f and lines that start with dots. */
export const EIGHT_BIT_BODY = Uint8Array.from([
  ...enc.encode("Subject: 8bit\r\nContent-Type: text/plain; charset=latin1\r\n\r\n"),
  0xe9,
  0xe8,
  0xff,
  0x80,
  13,
  10,
  ...enc.encode(".a line starting with a dot\r\n..two\r\n.\r\n"),
]);
