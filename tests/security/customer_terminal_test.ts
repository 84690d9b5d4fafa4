/**
 * (review wt18-revin) `fetch --once` ends a failed poll with one `error:` line on stderr, which
 * quotes the provider's reply. That text comes from the network, the greeting before any TLS
 * (anyone on the path, or whatever answers at fetch.server): escape sequences in it must not
 * reach the terminal that runs fetch (ESC/C1 CSI: colours, a cleared screen; OSC: the window
 * title, the clipboard where the terminal allows OSC 52). Real `fetch` process, a raw listener.
 */
import assert from "node:assert/strict";
import { runFetchOnce } from "../_helpers/fetch_process.ts";

const GREETING = "554 \x1b]0;PWNED\x07\x1b[2J\x1b[31mgo away \u009b32mnow\u202e\r\n";

// deno-lint-ignore no-control-regex -- control characters are what the test looks for
const DRIVES_TERMINAL = /[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2066-\u2069]/u;

Deno.test("fetch --once: escape sequences in a provider's reply do not reach stderr (wt18-revin)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-term-" });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const served = (async () => {
    const conn = await listener.accept();
    try {
      await conn.write(new TextEncoder().encode(GREETING));
      // Until fetch hangs up (its QUIT, or the close).
      await conn.read(new Uint8Array(512)).catch(() => null);
    } finally {
      conn.close();
    }
  })();
  try {
    const result = await runFetchOnce(dir, { server: `127.0.0.1:${listener.addr.port}` });
    await served;
    assert.equal(result.code, 5, result.stderr);
    const line = result.stderr.split("\n").find((l) => l.startsWith("error: ")) ?? "";
    assert.match(line, /554 .*go away .*now/, result.stderr);
    const hit = DRIVES_TERMINAL.exec(result.stderr);
    assert.equal(hit, null, `stderr holds U+${hit?.[0].codePointAt(0)?.toString(16)}: ${line}`);
  } finally {
    listener.close();
    await Deno.remove(dir, { recursive: true });
  }
});
