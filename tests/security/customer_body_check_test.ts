/**
 * The customer (`fetch --once`, the real process) checks BDAT bodies as it checks DATA (#10):
 * a hostile or broken provider's bare CR/LF or over-long line gets the same refusal either
 * way, and nothing reaches the Maildir. `fetch` once filed such BDAT bodies with 250.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { fetchFromScript } from "../_helpers/fetch_process.ts";
import type { ScriptMessage } from "../_helpers/scripted_provider.ts";

const enc = new TextEncoder();

/** Runs one `fetch --once` into a Maildir; the customer's final reply to each message. */
async function fetchInto(messages: ScriptMessage[]): Promise<{ finals: string[]; files: number }> {
  const { results, output, filed } = await fetchFromScript(messages);
  assert(!/uncaught|panicked|at .*\.ts:\d+/i.test(output), output);
  const finals = results.map((r) =>
    r.final === undefined ? "none" : `${r.final.code} ${r.final.enhanced ?? ""}`.trim()
  );
  return { finals, files: filed };
}

const long = (n: number) => "x".repeat(n - 2) + "\r\n";
const ROWS: { name: string; body: string; want: string }[] = [
  { name: "a bare LF", body: "Subject: a\r\n\r\nx\ny\r\n", want: "550 5.5.2" },
  { name: "a bare CR", body: "Subject: a\r\n\r\nx\ry\r\n", want: "550 5.5.2" },
  { name: "a line of 1001 octets", body: `Subject: a\r\n\r\n${long(1001)}`, want: "554 5.6.0" },
  { name: "a line of 1000 octets", body: `Subject: a\r\n\r\n${long(1000)}`, want: "250 2.0.0" },
];

Deno.test("customer: BDAT bodies get the DATA body checks, and nothing bad reaches the Maildir (#10)", async (t) => {
  for (const row of ROWS) {
    await t.step(`${row.name} over BDAT (in 7-octet chunks)`, async () => {
      const { finals, files } = await fetchInto([{
        from: "s@sender.test",
        rcpts: ["u@example.org"],
        body: enc.encode(row.body),
        bdatChunkBytes: 7,
      }]);
      assertEquals(finals.map((f) => f.slice(0, 9)), [row.want]);
      assertEquals(files, row.want.startsWith("250") ? 1 : 0);
    });
    if (row.want.startsWith("550")) continue; // DATA with a bare newline: customer_attacks_test
    await t.step(`${row.name} over DATA`, async () => {
      const { finals, files } = await fetchInto([{
        from: "s@sender.test",
        rcpts: ["u@example.org"],
        body: enc.encode(row.body),
      }]);
      assertEquals(finals.map((f) => f.slice(0, 9)), [row.want]);
      assertEquals(files, row.want.startsWith("250") ? 1 : 0);
    });
  }
  await t.step(
    "a bad BDAT message costs only itself: the next one in the session is filed",
    async () => {
      const { finals, files } = await fetchInto([
        {
          from: "s@sender.test",
          rcpts: ["u@example.org"],
          body: enc.encode("S: a\r\n\r\nx\ny\r\n"),
          bdatChunkBytes: 5,
        },
        {
          from: "s@sender.test",
          rcpts: ["u@example.org"],
          body: enc.encode("S: b\r\n\r\nok\r\n"),
          bdatChunkBytes: 5,
        },
      ]);
      assertEquals(finals.map((f) => f.slice(0, 3)), ["550", "250"]);
      assertEquals(files, 1);
    },
  );
});
