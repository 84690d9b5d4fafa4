/**
 * E2E: the real `serve` process on 127.0.0.1 port 0, a user created through the real CLI,
 * and swaks as the sending MTA (plain, pipelined, 8-bit, leading dots, foreign domain).
 */
import { deepStrictEqual as assertEquals, match, ok as assert } from "node:assert/strict";
import {
  addUser,
  queueList,
  removeTestFiles,
  runMain,
  startServer,
} from "../_helpers/server_process.ts";
import { toolTest } from "../_helpers/tools.ts";
import { collectBytes, endsWithBytes } from "../_helpers/bytes.ts";
import { swaks } from "./_swaks.ts";
import { openDatabase } from "../../src/queue/db.ts";
import { SqliteQueueStore } from "../../src/queue/sqlite_store.ts";

/** The stored body of a queued message, read through the queue store itself. */
async function storedBody(dataDir: string, id: string): Promise<Uint8Array> {
  const store = new SqliteQueueStore(openDatabase(dataDir), { removeOrphans: false });
  try {
    return await collectBytes(store.readBody(id));
  } finally {
    await store.close();
  }
}

await toolTest("serve accepts mail from swaks for a user's domain and refuses others", [
  "swaks",
], async (t) => {
  const server = await startServer();
  try {
    await addUser(server.configPath, "alice", ["example.org"]);
    const port = (server.smtp[0] ?? { port: 0 }).port;

    await t.step("a plain message is queued and listed in the contract's JSON shape", async () => {
      const r = await swaks(port, ["--from", "sender@example.net", "--to", "bob@Example.ORG"]);
      assertEquals(r.code, 0, r.out);
      match(r.out, /<- {2}250 2\.\d\.\d .*/);
      const list = await queueList(server.configPath) as Record<string, unknown>[];
      assertEquals(list.length, 1);
      const m = list[0] as Record<string, unknown>;
      assertEquals(Object.keys(m).sort(), ["from", "id", "received_at", "recipients", "size"]);
      assertEquals(m.from, "sender@example.net");
      assert(typeof m.id === "string" && m.id.length > 0);
      assert(typeof m.size === "number" && m.size > 0);
      assert(
        typeof m.received_at === "string" &&
          new Date(m.received_at).toISOString() === m.received_at,
        `received_at is ISO 8601: ${String(m.received_at)}`,
      );
      // The domain is compared and listed as the lower-case A-label; the local part as sent.
      const rcpts = m.recipients as { address: string; domain: string; status: string }[];
      assertEquals(rcpts.length, 1);
      assertEquals(Object.keys(rcpts[0] ?? {}).sort(), ["address", "domain", "route", "status"]);
      assertEquals(rcpts[0]?.address.toLowerCase(), "bob@example.org");
      assert(rcpts[0]?.address.startsWith("bob@"));
      assertEquals(rcpts[0]?.domain, "example.org");
      assertEquals(rcpts[0]?.status, "queued");
      assertEquals((rcpts[0] as { route?: string } | undefined)?.route, "atrn");
    });

    await t.step("a recipient in a domain nobody owns gets 550 5.7.1 (no open relay)", async () => {
      const r = await swaks(port, ["--from", "sender@example.net", "--to", "x@elsewhere.test"]);
      assert(r.code !== 0);
      match(r.out, /<\*\* 550 5\.7\.1/);
      const list = await queueList(server.configPath, "elsewhere.test") as unknown[];
      assertEquals(list, []);
    });

    await t.step("pipelined commands (swaks --pipeline) are answered in order", async () => {
      const r = await swaks(port, [
        "--pipeline",
        "--from",
        "pipe@example.net",
        "--to",
        "carol@example.org",
      ]);
      assertEquals(r.code, 0, r.out);
      match(r.out, /PIPELINING/);
      const list = await queueList(server.configPath) as { from: string }[];
      assert(list.some((m) => m.from === "pipe@example.net"));
    });

    await t.step("an 8-bit body with lines starting with '.' is stored byte-exact", async () => {
      // CRLF line ends, raw UTF-8 and Latin-1 bytes, a lone ".", "..", ".x" and a long line.
      const enc = new TextEncoder();
      const head = enc.encode(
        "From: sender@example.net\r\nTo: dave@example.org\r\nSubject: bytes\r\n" +
          "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n" +
          "Grüße aus Köln\r\n.\r\n..\r\n.leading dot\r\n . not leading\r\n",
      );
      const latin1 = Uint8Array.from([0xe9, 0xe8, 0xff, 0x80, 0x0d, 0x0a]);
      const tail = enc.encode(`${"x".repeat(900)}\r\nlast line\r\n`);
      const sent = new Uint8Array(head.length + latin1.length + tail.length);
      sent.set(head);
      sent.set(latin1, head.length);
      sent.set(tail, head.length + latin1.length);
      const file = await Deno.makeTempFile({ suffix: ".eml" });
      try {
        // swaks appends CRLF "." CRLF unless the data already ends with the closing dot.
        await Deno.writeFile(file, new Uint8Array([...sent, ...enc.encode(".\r\n")]));
        const r = await swaks(
          port,
          [
            "--from",
            "bytes@example.net",
            "--to",
            "dave@example.org",
            "--data",
            `@${file}`,
            "--body-8bitmime",
          ].filter((a) => a !== "--body-8bitmime"),
        );
        assertEquals(r.code, 0, r.out);
      } finally {
        await Deno.remove(file);
      }
      const list = await queueList(server.configPath) as { id: string; from: string }[];
      const queued = list.find((m) => m.from === "bytes@example.net");
      assert(queued !== undefined, "the message is queued");
      const body = await storedBody(server.dataDir, queued.id);
      assert(
        new TextDecoder().decode(body.subarray(0, 9)) === "Received:",
        "a Received: trace header is prepended",
      );
      assert(endsWithBytes(body, sent), "the body after the trace header is exactly what was sent");
    });

    await t.step("a user added while serve runs is accepted at once", async () => {
      await addUser(server.configPath, "erin", ["late.example"]);
      const r = await swaks(port, ["--from", "s@example.net", "--to", "x@late.example"]);
      assertEquals(r.code, 0, r.out);
    });
  } finally {
    const code = await server.stop();
    assertEquals(code, 0, server.logs());
    await removeTestFiles(server);
  }
});

await toolTest("serve survives a restart with its queue intact", ["swaks"], async () => {
  const first = await startServer();
  let second: Awaited<ReturnType<typeof startServer>> | undefined;
  try {
    await addUser(first.configPath, "alice", ["example.org"]);
    const r = await swaks((first.smtp[0] ?? { port: 0 }).port, [
      "--from",
      "keep@example.net",
      "--to",
      "bob@example.org",
    ]);
    assertEquals(r.code, 0, r.out);
    const before = await queueList(first.configPath);
    assertEquals(await first.stop(), 0, first.logs());

    second = await startServer({ dataDir: first.dataDir });
    assertEquals(await queueList(second.configPath), before);
    const again = await swaks((second.smtp[0] ?? { port: 0 }).port, [
      "--from",
      "keep2@example.net",
      "--to",
      "bob@example.org",
    ]);
    assertEquals(again.code, 0, "the user survived the restart too");
  } finally {
    if (second) assertEquals(await second.stop(), 0, second.logs());
    else await first.stop();
    await removeTestFiles(first);
  }
});

Deno.test("serve refuses a connection over max_connections_per_ip with 421 4.7.0", async () => {
  const server = await startServer({ config: { smtp: { max_connections_per_ip: 1 } } });
  const port = (server.smtp[0] ?? { port: 0 }).port;
  const conns: Deno.TcpConn[] = [];
  try {
    const read = async (c: Deno.TcpConn) => {
      const buf = new Uint8Array(512);
      const n = await c.read(buf);
      return n === null ? "" : new TextDecoder().decode(buf.subarray(0, n));
    };
    conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    match(await read(conns[0] as Deno.TcpConn), /^220 /);
    conns.push(await Deno.connect({ hostname: "127.0.0.1", port }));
    match(await read(conns[1] as Deno.TcpConn), /^421 4\.7\.0 /);
  } finally {
    for (const c of conns) {
      try {
        c.close();
      } catch {
        // Closed by the server.
      }
    }
    assertEquals(await server.stop(), 0);
    await removeTestFiles(server);
  }
});

Deno.test("check-config and serve exit 2 on config errors, naming the file and key", async (t) => {
  const dir = await Deno.makeTempDir();
  try {
    const rows = [
      {
        why: "unknown key with a suggestion",
        yaml: "smtp:\n  max_conections: 5\n",
        want: `smtp.max_conections is not a known key: did you mean "smtp.max_connections"?`,
      },
      {
        why: "bad duration",
        yaml: "queue:\n  max_age: forever\n",
        want:
          `queue.max_age must be a duration such as 30s, 5m, 2h or 30d: current value is "forever"`,
      },
      {
        why: "an expiry age below its floor",
        yaml: "outbound:\n  delay_notice: 1s\n",
        want: `outbound.delay_notice must be at least 30m: current value is "1s"`,
      },
      {
        why: "bad listen entry",
        yaml: `smtp:\n  listen: ["127.0.0.1:25", "x"]\n`,
        want: `smtp.listen[1] must be "HOST:PORT": current value is "x"`,
      },
    ];
    for (const [i, row] of rows.entries()) {
      await t.step(row.why, async () => {
        const file = `${dir}/c${i}.yaml`;
        await Deno.writeTextFile(file, row.yaml);
        for (const command of ["check-config", "serve"]) {
          const r = await runMain([command, "--config", file]);
          assertEquals(r.code, 2, `${command}: ${r.stderr}`);
          assertEquals(r.stderr, `error: Cannot load config "${file}": ${row.want}\n`);
        }
      });
    }
    await t.step("missing file, also through ODMR_RELAY_CONFIG", async () => {
      const r = await runMain(["serve"], { env: { ODMR_RELAY_CONFIG: `${dir}/none.yaml` } });
      assertEquals(r.code, 2);
      assertEquals(r.stderr, `error: Cannot load config "${dir}/none.yaml": file not found\n`);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
