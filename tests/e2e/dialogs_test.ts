/**
 * Transcript tests (#12): every file in tests/e2e/dialogs/ is one dialogue, played by
 * tests/_helpers/transcript.ts (its top comment gives the format) against our real code.
 * The file name's first word says which code it runs against:
 * - `provider_*`: the ODMR provider session (runProviderSession) over an in-memory Conn, with
 *   a temp SQLite database, user `alice` / `alice-pw` for example.org and nothing queued.
 *   The file plays `C:` (the customer); `P:` lines are ours.
 * - `mx_*`: the MX receiver (SmtpReceiver + the real QueueSink on a temp SQLite queue, local
 *   domain example.org) over an in-memory Conn. The file plays `C:`; `S:` lines are ours.
 * - `mxtls_*`: the same MX receiver offering STARTTLS with a test CA's certificate, over real
 *   sockets on 127.0.0.1 (needs openssl); `C: {starttls}` is where the file's client starts TLS.
 * - `customer_*`: `odmr-relay fetch` (runCustomer) against the file as provider on
 *   127.0.0.1:0, user `alice` / `s3cret pass`, domain example.org, delivering to a Maildir.
 *   The file plays `P:`; `C:` lines are ours.
 */
import {
  deepStrictEqual as assertEquals,
  ok as assert,
  throws as assertThrows,
} from "node:assert/strict";
import net from "node:net";
import type tls from "node:tls";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";
import { runCustomer } from "../../src/odmr/customer.ts";
import { SmtpReceiver } from "../../src/smtp/receiver.ts";
import { QueueSink } from "../../src/smtp/sinks/queue_sink.ts";
import { connect, SocketConn } from "../../src/net/conn.ts";
import type { Conn } from "../../src/net/conn.ts";
import { listen } from "../../src/net/listener.ts";
import { loadSecureContext } from "../../src/net/tls_context.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { connPair } from "../_helpers/conn_pair.ts";
import { aliceFetchConfig } from "../_helpers/customer_config.ts";
import { makeTestCa } from "../_helpers/certs.ts";
import { toolTest } from "../_helpers/tools.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { runTestProvider, withProviderStores } from "../_helpers/test_provider.ts";
import { lineMatches, parseTranscript, playTranscript } from "../_helpers/transcript.ts";

const DIR = new URL("./dialogs/", import.meta.url);

async function provider(source: string): Promise<void> {
  await withProviderStores(async (stores) => {
    const { server, client } = connPair();
    const done = runTestProvider(server, stores);
    try {
      await playTranscript(source, client, "C");
    } finally {
      client.destroy();
      await done;
    }
  });
}

/** The MX receiver of the `mx_*` and `mxtls_*` dialogues, on the real queue sink. */
function mxReceiver(conn: Conn, store: SqliteQueueStore, tls?: tls.SecureContext): SmtpReceiver {
  return new SmtpReceiver({
    conn,
    reader: new LineReader(conn),
    sink: new QueueSink({
      store,
      isLocalDomain: (d) => d === "example.org",
      log: NULL_LOGGER,
      maxRecipients: 100,
    }),
    log: NULL_LOGGER,
    options: {
      hostname: "mx.test",
      maxMessageBytes: 100_000,
      maxRecipients: 100,
      commandTimeoutMs: 5_000,
      maxErrors: 10,
      addTraceHeader: false,
      ...(tls !== undefined ? { tls: { secureContext: tls } } : {}),
    },
  });
}

async function mx(source: string): Promise<void> {
  await withQueueStore(async (store) => {
    const { server, client } = connPair();
    // The listener closes the connection once the session is over.
    const done = mxReceiver(server, store).run().finally(() => server.destroy());
    try {
      await playTranscript(source, client, "C");
    } finally {
      client.destroy();
      await done;
    }
  });
}

async function mxTls(source: string): Promise<void> {
  const ca = await makeTestCa();
  assert(ca !== undefined, "openssl made the test CA");
  const secureContext = loadSecureContext(ca.certPath, ca.keyPath);
  const sessions: Promise<unknown>[] = [];
  try {
    await withQueueStore(async (store) => {
      const listener = await listen({
        host: "127.0.0.1",
        port: 0,
        onConn: (conn) => {
          sessions.push(mxReceiver(conn, store, secureContext).run().finally(() => conn.close()));
        },
      });
      const { conn } = await connect({ host: "127.0.0.1", port: listener.port });
      try {
        await playTranscript(source, conn, "C", 5_000, {
          startTls: async (c) => {
            const up = await c.startTlsClient({ servername: "localhost", ca: ca.caCertPem });
            assert(up.authorized, "the test CA signed the server certificate");
          },
        });
      } finally {
        await conn.close();
        await Promise.all(sessions);
        await listener.close();
      }
    });
  } finally {
    await ca.cleanup();
  }
}

/** Runs `fn` with a fresh SQLite queue, closed and removed afterwards. */
async function withQueueStore(fn: (store: SqliteQueueStore) => Promise<void>): Promise<void> {
  await withTempDataDir(async (dataDir) => {
    const store = new SqliteQueueStore(openDatabase(dataDir), { logger: NULL_LOGGER });
    try {
      await fn(store);
    } finally {
      await store.close();
    }
  });
}

async function customer(source: string): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "odmr-dialog-" });
  const sockets: net.Socket[] = [];
  // Settles to the transcript's error, if any (awaited after the poll).
  let played: Promise<unknown> | undefined;
  const listener = net.createServer((socket) => {
    sockets.push(socket);
    played ??= playTranscript(source, new SocketConn(socket), "P")
      .then(() => undefined, (err: unknown) => err)
      .finally(() => socket.end());
  });
  try {
    await Deno.writeTextFile(`${dir}/password`, "s3cret pass\n");
    await Deno.chmod(`${dir}/password`, 0o600);
    await new Promise<void>((resolve) => listener.listen(0, "127.0.0.1", () => resolve()));
    const port = (listener.address() as net.AddressInfo).port;
    const outcome = await runCustomer(aliceFetchConfig(dir, port), {
      log: NULL_LOGGER,
      timeouts: { connectMs: 5_000, commandMs: 5_000, atrnMs: 5_000, receiverMs: 5_000 },
    });
    assert(played, `the customer never connected: ${outcome.message}`);
    const err = await played;
    if (err !== undefined) throw err;
  } finally {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => listener.close(() => resolve()));
    await Deno.remove(dir, { recursive: true });
  }
}

const TARGETS: Record<string, (source: string) => Promise<void>> = {
  provider,
  mx,
  mxtls: mxTls,
  customer,
};
/** External tools a target needs (the test is skipped, or fails under CI, without them). */
const TOOLS: Record<string, readonly string[]> = { mxtls: ["openssl"] };

for (const entry of [...Deno.readDirSync(DIR)].sort((a, b) => a.name.localeCompare(b.name))) {
  if (!entry.name.endsWith(".txt")) continue;
  const kind = entry.name.split("_")[0]!;
  const run = TARGETS[kind];
  await toolTest(`(#12) dialogue ${entry.name}`, TOOLS[kind] ?? [], async () => {
    assert(run, `${entry.name}: the name must start with provider_, mx_, mxtls_ or customer_`);
    await run(await Deno.readTextFile(new URL(entry.name, DIR)));
  });
}

Deno.test("(#12) transcript lines: {…} matches any text on the line, the rest exactly", () => {
  assert(lineMatches("250 2.6.0 {queued as id}", "250 2.6.0 Message accepted as 01ABC"));
  assert(lineMatches("334 {challenge}", "334 "));
  assert(!lineMatches("550 5.7.1 {text}", "250 2.1.5 Recipient OK"));
  assert(!lineMatches("250 OK", "250 OK now"));
  assert(!lineMatches("250-SIZE 100000", "250-SIZE 1000000"));
  assert(lineMatches("a.b (c) [d] *", "a.b (c) [d] *"));
  assert(!lineMatches("a.b", "axb"));
  assertThrows(() => parseTranscript("S: 220 ok\nno prefix here\n"), /line 2/);
  assertEquals(parseTranscript("# why\n\nC: EHLO x\r\nS:\n"), [
    { side: "C", text: "EHLO x", lineNo: 3 },
    { side: "S", text: "", lineNo: 4 },
  ]);
});
