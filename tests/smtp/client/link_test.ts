import assert from "node:assert/strict";
import { connPair, type MemoryConn } from "../../_helpers/conn_pair.ts";
import { LineReader } from "../../../src/wire/line_reader.ts";
import { NULL_LOGGER } from "../../../src/observe/log.ts";
import {
  ClientLink,
  LINK_CLOSED,
  LINK_PROTOCOL_ERROR,
  LINK_TIMED_OUT,
  type LossCause,
} from "../../../src/smtp/client/link.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

function setup(lineRecords = false): { link: ClientLink; server: MemoryConn; client: MemoryConn } {
  const { client, server } = connPair();
  const link = new ClientLink({
    conn: client,
    reader: new LineReader(client),
    log: NULL_LOGGER,
    options: { lineRecords },
  });
  return { link, server, client };
}

/** What the client wrote, as text. */
function written(client: MemoryConn): string[] {
  return client.written.map((c) => dec.decode(c));
}

Deno.test("ClientLink maps 421, end of stream, timeout and garbage to one loss each (#12)", async (t) => {
  const rows: {
    what: string;
    peer: (server: MemoryConn) => void;
    cause: LossCause;
    code: number;
    enhanced: string;
  }[] = [
    {
      what: "a 421 is the peer closing: its own reply settles what waited",
      peer: (s) => void s.write(enc.encode("421 4.3.2 Shutting down\r\n")),
      cause: "closing",
      code: 421,
      enhanced: "4.3.2",
    },
    {
      what: "end of stream",
      peer: (s) => s.destroy(),
      cause: "eof",
      code: LINK_CLOSED.code,
      enhanced: "4.4.2",
    },
    {
      what: "no reply in time",
      peer: () => {},
      cause: "timeout",
      code: LINK_TIMED_OUT.code,
      enhanced: "4.4.2",
    },
    {
      what: "a reply without a code",
      peer: (s) => void s.write(enc.encode("hello there\r\n")),
      cause: "garbage",
      code: LINK_PROTOCOL_ERROR.code,
      enhanced: "4.5.0",
    },
    {
      what: "a reply line over 512 octets",
      peer: (s) => void s.write(enc.encode(`250 ${"x".repeat(600)}\r\n`)),
      cause: "garbage",
      code: 421,
      enhanced: "4.5.0",
    },
  ];
  for (const row of rows) {
    await t.step(row.what, async () => {
      const { link, server, client } = setup();
      row.peer(server);
      const answer = await link.read(50);
      assert.equal(answer.kind, "lost");
      assert(answer.kind === "lost");
      assert.equal(answer.loss.cause, row.cause);
      assert.equal(answer.loss.reply.code, row.code);
      assert.equal(answer.loss.reply.enhanced, row.enhanced);
      assert.equal(link.isLost, true);
      assert.equal(client.closed, true, "a lost link drops the connection");
      // Later calls answer with the same loss, without I/O.
      const again = await link.command("NOOP", 50);
      assert(again.kind === "lost");
      assert.equal(again.loss, answer.loss);
      assert.deepEqual(written(client), []);
      server.destroy();
    });
  }
});

Deno.test("ClientLink.read() returns 2xx-5xx replies other than 421 as replies", async () => {
  const { link, server } = setup();
  await server.write(enc.encode("250-first\r\n250 2.0.0 second\r\n452 4.2.2 Full\r\n"));
  const a = await link.read(1000);
  assert(a.kind === "reply");
  assert.deepEqual(a.reply.lines, ["first", "2.0.0 second"]);
  const b = await link.read(1000);
  assert(b.kind === "reply");
  assert.equal(b.reply.code, 452);
  assert.equal(b.reply.enhanced, "4.2.2");
  assert.equal(link.isLost, false);
  server.destroy();
});

Deno.test("ClientLink.lose() keeps the first loss and drops the connection", async () => {
  const { link, server, client } = setup();
  const loss = link.lose(LINK_PROTOCOL_ERROR, "unexpected reply");
  assert.equal(loss.cause, "local");
  assert.equal(client.closed, true);
  link.lose(LINK_CLOSED, "second");
  assert.equal(link.loss?.reason, "unexpected reply");
  assert.equal(await link.writeLines(["RSET"], 100), false);
  server.destroy();
});

/** A peer that answers each command line from `answers` (by verb), in order. */
function answering(server: MemoryConn, answers: Record<string, string>): void {
  const reader = new LineReader(server);
  (async () => {
    for (;;) {
      const line = await reader.readLine(1000).catch(() => undefined);
      if (line === undefined || line.kind !== "line") return;
      const verb = dec.decode(line.line).split(" ")[0] ?? "";
      const answer = answers[verb];
      if (answer === undefined) return;
      await server.write(enc.encode(answer));
    }
  })();
}

Deno.test("ClientLink.hello() falls back from EHLO to HELO only after a 5xx, never under LMTP", async (t) => {
  const rows: {
    what: string;
    answers: Record<string, string>;
    opts: { lmtp?: boolean; heloFallback?: boolean };
    want: "ready" | "refused";
    commands: string[];
    isExtended?: boolean;
  }[] = [
    {
      what: "EHLO accepted: extensions parsed",
      answers: { EHLO: "250-mx.test\r\n250-PIPELINING\r\n250 8BITMIME\r\n" },
      opts: {},
      want: "ready",
      commands: ["EHLO me.test\r\n"],
      isExtended: true,
    },
    {
      what: "EHLO 502: HELO, no extensions",
      answers: { EHLO: "502 5.5.1 No\r\n", HELO: "250 mx.test\r\n" },
      opts: {},
      want: "ready",
      commands: ["EHLO me.test\r\n", "HELO me.test\r\n"],
      isExtended: false,
    },
    {
      what: "EHLO 451: temporary, no HELO",
      answers: { EHLO: "451 4.3.0 Later\r\n" },
      opts: {},
      want: "refused",
      commands: ["EHLO me.test\r\n"],
    },
    {
      what: "EHLO 500 without fallback (ODMR needs EHLO)",
      answers: { EHLO: "500 5.5.1 What\r\n" },
      opts: { heloFallback: false },
      want: "refused",
      commands: ["EHLO me.test\r\n"],
    },
    {
      what: "LMTP: LHLO, and no HELO after a 500 (RFC 2033 has none)",
      answers: { LHLO: "500 5.5.1 What\r\n" },
      opts: { lmtp: true },
      want: "refused",
      commands: ["LHLO me.test\r\n"],
    },
  ];
  for (const row of rows) {
    await t.step(row.what, async () => {
      const { link, server, client } = setup();
      answering(server, row.answers);
      const hello = await link.hello("me.test", { timeoutMs: 1000, ...row.opts });
      assert.equal(hello.kind, row.want);
      if (hello.kind === "ready") assert.equal(hello.caps.isExtended, row.isExtended);
      assert.deepEqual(written(client), row.commands);
      client.destroy();
    });
  }
});

Deno.test("ClientLink writes a command group as one write, or one write per line with lineRecords", async () => {
  for (const lineRecords of [false, true]) {
    const { link, server, client } = setup(lineRecords);
    assert.equal(
      await link.writeLines(["MAIL FROM:<a@b.test>", "RCPT TO:<c@d.test>", "DATA"], 100),
      true,
    );
    const want = ["MAIL FROM:<a@b.test>\r\n", "RCPT TO:<c@d.test>\r\n", "DATA\r\n"];
    assert.deepEqual(written(client), lineRecords ? want : [want.join("")]);
    server.destroy();
  }
});
