/**
 * The provider of the ODMR end-to-end tests (odmr_provider_test, fetch_e2e_test,
 * fetchmail_test): the real `serve` with two users, alice (example.org and example.com,
 * password alice-pw) and bob (bob.example, bob-pw), stopped and its files removed afterwards;
 * and the mail those tests queue and look for.
 */
import { addUser, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import type { ServerProcess } from "../_helpers/server_process.ts";
import { submitAccepted } from "../_helpers/smtp_submit.ts";

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

/**
 * Queues on `server`'s SMTP port the two messages the fetch tests take: EIGHT_BIT_BODY
 * (BODY=8BITMIME) from s@remote.test to u1@example.org, u2@bob.example and u3@example.com, then
 * `second` from <> to u4@example.org. Throws unless both get a 250.
 */
export async function queueEightBitAndNull(
  server: ServerProcess,
  second: Uint8Array,
): Promise<void> {
  const port = server.smtp[0]!.port; // startServer waited for the smtp listener
  await submitAccepted({
    port,
    from: "s@remote.test",
    to: ["u1@example.org", "u2@bob.example", "u3@example.com"],
    body: EIGHT_BIT_BODY,
    mailParams: "BODY=8BITMIME",
  });
  await submitAccepted({ port, from: "", to: ["u4@example.org"], body: second });
}
