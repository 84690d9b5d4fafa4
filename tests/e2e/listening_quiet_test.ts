/**
 * CONTRACT: serve logs one `listening` event per listener with the bound address, so a script can
 * find a port-0 listener, also under `log.level: warn` (or `-q`), which leaves out info lines.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { removeTestFiles, startServer } from "../_helpers/server_process.ts";
import { parseLogLine } from "../_helpers/log_lines.ts";

Deno.test("serve at log.level warn still logs its listening events, and no other info line", async () => {
  const server = await startServer({
    config: { log: { level: "warn" } },
    until: /event=listening proto=odmr address=\S+:\d+/,
  });
  try {
    assertEquals(server.smtp.length, 1, server.logs());
    assertEquals(server.odmr.length, 1, server.logs());
    assert(server.smtp[0]!.port > 0 && server.odmr[0]!.port > 0);
    const events = server.logs().split("\n").flatMap((l) => {
      const e = parseLogLine(l);
      return e ? [`${e.level} ${e.event}`] : [];
    });
    assertEquals(events.filter((e) => e.startsWith("info ")), [
      "info listening",
      "info listening",
    ]);
  } finally {
    await server.stop();
    await removeTestFiles(server);
  }
});
