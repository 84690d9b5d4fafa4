/**
 * The private Postfix helper (tests/_helpers/postfix.ts) and its smtpd port: Postfix's master
 * binds with SO_REUSEPORT, so a second instance started on a port another one holds starts
 * fine and the kernel then spreads connections over both (a test would talk to the wrong
 * Postfix half of the time). The helper must refuse a port it does not hold alone.
 */
import { ok as assert } from "node:assert/strict";
import {
  postfixUnavailable,
  type PrivatePostfix,
  startPrivatePostfix,
} from "../_helpers/postfix.ts";
import { freePort } from "../_helpers/spawned.ts";
import { isCi } from "../_helpers/tools.ts";

const WHAT = "startPrivatePostfix refuses an smtpd port another Postfix holds";
const why = await postfixUnavailable();
if (why !== undefined && isCi()) throw new Error(`${why}, and CI=true forbids skipping`);
// deno-lint-ignore no-console -- the printed reason is the point of a skip
if (why !== undefined) console.log(`skip: ${WHAT}: ${why}`);

Deno.test({ name: WHAT, ignore: why !== undefined }, async () => {
  const settings = { "mynetworks": "127.0.0.0/8" };
  await using first = await startPrivatePostfix(settings, { smtpdPort: freePort() });
  const port = first.smtpdPort ?? 0;
  let second: PrivatePostfix | undefined;
  let error: unknown;
  try {
    second = await startPrivatePostfix(settings, { smtpdPort: port });
  } catch (err) {
    error = err;
  }
  await second?.stop();
  assert(second === undefined, "a second Postfix was handed back sharing the smtpd port");
  assert(String(error).includes(`port ${port}`), String(error));
  // On a spare port of its own choosing (tried again if taken) it starts, alone, and greets.
  await using spare = await startPrivatePostfix(settings, { smtpdPort: "spare" });
  assert(spare.smtpdPort !== undefined && spare.smtpdPort !== port);
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: spare.smtpdPort });
  const timer = setTimeout(() => conn.close(), 10_000); // bounded: no greeting fails below
  try {
    const buf = new Uint8Array(512);
    const n = await conn.read(buf);
    const greeting = new TextDecoder().decode(buf.subarray(0, n ?? 0));
    assert(greeting.startsWith("220 "), greeting);
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch {
      // closed by the timer
    }
  }
});
