import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { connect } from "../../src/net/conn.ts";
import { listen } from "../../src/net/listener.ts";
import { LineReader } from "../../src/wire/line_reader.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { SmtpSender } from "../../src/smtp/sender.ts";
import { type ScriptedServer, startScriptedServer } from "../_helpers/scripted_server.ts";
import { message } from "./_sender_fixture.ts";

const enc = new TextEncoder();

Deno.test("SmtpSender over a real TCP socket, with and without lineRecords", async (t) => {
  for (const lineRecords of [false, true]) {
    await t.step(lineRecords ? "one write per line" : "chunked writes", async () => {
      let served: ScriptedServer | undefined;
      const listener = await listen({
        host: "127.0.0.1",
        port: 0,
        onConn: (conn) => {
          served = startScriptedServer(conn);
        },
      });
      const { conn } = await connect({ host: "127.0.0.1", port: listener.port });
      try {
        const sender = new SmtpSender({
          conn,
          reader: new LineReader(conn),
          log: NULL_LOGGER,
          options: { hostname: "provider.test", lineRecords },
        });
        assertEquals((await sender.greet()).code, 220);
        assert("isExtended" in (await sender.hello()));
        const lines: Uint8Array[] = [];
        for (let i = 0; i < 2000; i++) lines.push(enc.encode(`${i % 3 ? "" : "."}line ${i}\r\n`));
        const result = await sender.send(message({ recipients: ["a@c.test"], body: lines }));
        assertEquals(result.recipients.map((r) => r.outcome), ["delivered"]);
        await sender.quit();
        await served?.done;
        const body = served?.bodies[0];
        assert(body !== undefined);
        assertEquals(
          new TextDecoder().decode(body),
          lines.map((l) => new TextDecoder().decode(l)).join(""),
        );
      } finally {
        await conn.close();
        await listener.close();
      }
    });
  }
});
