/**
 * line_records end to end (#13): the real `serve` with TLS, a scripted customer, and a TCP
 * relay between them that counts the TLS records the provider sends. A fetchmail-like
 * customer (implicit TLS, CRAM-MD5) must get one line per record in the reversed phase; our
 * own kind of customer (STARTTLS or SCRAM-SHA-256) must get the body in few, full records.
 */
import { match as assertMatch, ok as assert } from "node:assert/strict";
import { addUser, removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { runScriptedCustomer } from "../_helpers/scripted_customer.ts";
import type { CustomerScript } from "../_helpers/scripted_customer.ts";
import { submitAccepted } from "../_helpers/smtp_submit.ts";
import { testCaOrSkip } from "../_helpers/certs.ts";

const enc = new TextEncoder();
/** Body lines of the one queued message: far more than the records of the dialogue around it. */
const BODY_LINES = 400;
const TLS_APPLICATION_DATA = 23;
const STARTTLS_READY = "220 2.0.0 Ready to start TLS\r\n";

/**
 * Counts application-data TLS records in a byte stream, across chunk boundaries. Under
 * STARTTLS, the plaintext up to the server's `220` to STARTTLS is skipped first.
 */
class RecordCounter {
  records = 0;
  #header = new Uint8Array(5);
  #headerFill = 0;
  #bodyLeft = 0;
  #plaintext: string | undefined;

  constructor(startTls: boolean) {
    this.#plaintext = startTls ? "" : undefined;
  }

  feed(chunk: Uint8Array): void {
    let i = 0;
    if (this.#plaintext !== undefined) {
      // Plaintext replies are ASCII: one code unit per byte.
      this.#plaintext += String.fromCharCode(...chunk);
      const at = this.#plaintext.indexOf(STARTTLS_READY);
      if (at < 0) return;
      i = chunk.length - (this.#plaintext.length - at - STARTTLS_READY.length);
      this.#plaintext = undefined;
    }
    while (i < chunk.length) {
      if (this.#bodyLeft > 0) {
        const n = Math.min(this.#bodyLeft, chunk.length - i);
        this.#bodyLeft -= n;
        i += n;
        continue;
      }
      this.#header[this.#headerFill++] = chunk[i++]!; // i < chunk.length
      if (this.#headerFill < 5) continue;
      this.#headerFill = 0;
      if (this.#header[0] === TLS_APPLICATION_DATA) this.records++;
      this.#bodyLeft = (this.#header[3]! << 8) | this.#header[4]!; // a 5-byte header
    }
  }
}

/** Relays one connection to `port`, counting the TLS records that come back from it. */
function countingRelay(port: number, startTls: boolean) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const counter = new RecordCounter(startTls);
  const done = (async () => {
    const client = await listener.accept();
    listener.close();
    const server = await Deno.connect({ hostname: "127.0.0.1", port });
    client.setNoDelay(true);
    server.setNoDelay(true);
    const down = (async () => {
      const w = client.writable.getWriter();
      for await (const chunk of server.readable) {
        counter.feed(chunk);
        await w.write(chunk);
      }
      await w.close().catch(() => {});
    })();
    await Promise.allSettled([client.readable.pipeTo(server.writable), down]);
  })();
  return { port: (listener.addr as Deno.NetAddr).port, counter, done };
}

Deno.test("line_records by default: one line per TLS record for a fetchmail-like customer only (#13)", async (t) => {
  const ca = await testCaOrSkip("line_records by default");
  if (ca === undefined) return;
  const server = await startServer({
    config: {
      tls: { cert: ca.certPath, key: ca.keyPath },
      odmr: {
        listen: [
          "127.0.0.1:0",
          { address: "127.0.0.1:0", tls: "implicit" },
          { address: "127.0.0.1:0", "line_records": true },
        ],
      },
    },
  });
  try {
    await addUser(server.configPath, "alice", ["example.org"], "alice-pw");
    const [starttls, implicit, forced] = server.odmr;
    assert(starttls && implicit && forced, "three ODMR listeners");
    const body = enc.encode(
      "Subject: lines\r\n\r\n" +
        Array.from({ length: BODY_LINES }, (_, i) => `line ${i} of the body\r\n`).join(""),
    );
    const cases: {
      why: string;
      port: number;
      script: Pick<CustomerScript, "tls" | "auth">;
      perLine: boolean;
    }[] = [
      {
        why: "implicit TLS + CRAM-MD5 (fetchmail): one line per record",
        port: implicit.port,
        script: {
          tls: "implicit",
          auth: { mechanism: "CRAM-MD5", user: "alice", password: "alice-pw" },
        },
        perLine: true,
      },
      {
        why: "STARTTLS + SCRAM-SHA-256 (our fetch): full records",
        port: starttls.port,
        script: {
          tls: "starttls",
          auth: { mechanism: "SCRAM-SHA-256", user: "alice", password: "alice-pw" },
        },
        perLine: false,
      },
      {
        why: "implicit TLS + SCRAM-SHA-256 (our fetch): full records",
        port: implicit.port,
        script: {
          tls: "implicit",
          auth: { mechanism: "SCRAM-SHA-256", user: "alice", password: "alice-pw" },
        },
        perLine: false,
      },
      {
        why: "STARTTLS + CRAM-MD5 (fetchmail never says STARTTLS in ODMR mode): full records",
        port: starttls.port,
        script: {
          tls: "starttls",
          auth: { mechanism: "CRAM-MD5", user: "alice", password: "alice-pw" },
        },
        perLine: false,
      },
      {
        why: "line_records: true on the listener: one line per record for our fetch too",
        port: forced.port,
        script: {
          tls: "starttls",
          auth: { mechanism: "SCRAM-SHA-256", user: "alice", password: "alice-pw" },
        },
        perLine: true,
      },
    ];
    for (const c of cases) {
      await t.step(c.why, async () => {
        await submitAccepted({
          port: server.smtp[0]!.port, // startServer waited for the smtp listener
          from: "s@remote.test",
          to: ["x@example.org"],
          body,
        });
        const relay = countingRelay(c.port, c.script.tls === "starttls");
        const r = await runScriptedCustomer({
          port: relay.port,
          caCerts: [ca.caCertPem],
          atrn: "example.org",
          ...c.script,
        });
        await relay.done;
        assertMatch(r.atrnReply ?? "", /^250 /);
        assert(r.messages.length === 1, `one message delivered, got ${r.messages.length}`);
        const records = relay.counter.records;
        if (c.perLine) {
          assert(records > BODY_LINES, `one record per line: ${records} records`);
        } else {
          assert(records < BODY_LINES / 10, `body in full records: ${records} records`);
        }
      });
    }
  } finally {
    await server.stop();
    await removeTestFiles(server);
    await ca.cleanup();
  }
});
