// The receiver's debug line for an accepted message is built only when debug lines are written:
// below debug the sink's transaction id (made when first asked for: a clock read and a string
// per message at the customer) is never asked for; at debug the line names it (#13).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { createLogger } from "../../src/observe/log.ts";
import type { LogLevel } from "../../src/config/types.ts";
import type { MessageSink, SinkTransaction } from "../../src/smtp/sink.ts";
import { FakeSink } from "../_helpers/fake_sink.ts";
import { startReady } from "./_session.ts";

/** A sink whose transactions count how often their id is asked for. */
function countingIds(inner: MessageSink): { sink: MessageSink; asked: () => number } {
  let asked = 0;
  const sink: MessageSink = {
    async begin(mail, session) {
      const tx = await inner.begin(mail, session);
      if ("code" in tx) return tx;
      return new Proxy(tx, {
        get(target, key) {
          if (key === "id") asked++;
          const v = Reflect.get(target, key, target);
          return typeof v === "function" ? v.bind(target) : v;
        },
      }) as SinkTransaction;
    },
  };
  return { sink, asked: () => asked };
}

async function oneMessage(level: LogLevel, how: "DATA" | "BDAT") {
  const lines: string[] = [];
  const log = createLogger({ level, format: "text", sink: (l) => lines.push(l) });
  const ids = countingIds(new FakeSink());
  const s = await startReady({ otherSink: ids.sink, log });
  await s.client.command("MAIL FROM:<a@b.test>");
  await s.client.command("RCPT TO:<c@d.test>");
  const body = "Subject: x\r\n\r\nhi\r\n";
  const final = how === "DATA"
    ? (await s.client.command("DATA"), await s.client.command(`${body}.`))
    : await s.client.command(`BDAT ${body.length} LAST\r\n${body}`.slice(0, -2));
  await s.end();
  return { final, asked: ids.asked(), lines };
}

for (const how of ["DATA", "BDAT"] as const) {
  Deno.test(`receiver: below debug an accepted message's id is never asked for (${how}) (#13)`, async () => {
    const r = await oneMessage("info", how);
    assertEquals(r.final.slice(0, 3), "250");
    assertEquals(r.asked, 0);
    assertEquals(r.lines.some((l) => l.includes("smtp_message_received")), false);
  });

  Deno.test(`receiver: at debug the accepted message's line names its id (${how}) (#13)`, async () => {
    const r = await oneMessage("debug", how);
    assertEquals(r.final.slice(0, 3), "250");
    const line = r.lines.find((l) => l.includes("event=smtp_message_received"));
    assertEquals(line !== undefined && /\bid=T\d+\b/.test(line), true, r.lines.join("\n"));
  });
}
