/**
 * The smtp-sink helper (tests/_helpers/smtp_sink.ts) under a port clash: a spare port picked
 * by one test run can be taken by another run before smtp-sink binds it. The helper must not
 * hand back a sink whose smtp-sink died there while another program answers on the port (the
 * test would then talk to that program; another test's smtp-sink greets just like it), and on a
 * spare port of its own choosing it starts.
 */
import { ok as assert } from "node:assert/strict";
import { SmtpSink } from "../_helpers/smtp_sink.ts";
import { toolTest } from "../_helpers/tools.ts";

await toolTest("SmtpSink.start refuses a port another program answers on", [
  "smtp-sink",
], async () => {
  const other = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (other.addr as Deno.NetAddr).port;
  const serving = (async () => {
    for await (const c of other) {
      await c.write(new TextEncoder().encode("220 someone-else ESMTP\r\n")).catch(() => 0);
      c.close();
    }
  })();
  try {
    let started: SmtpSink | undefined;
    let error: unknown;
    try {
      started = await SmtpSink.start({ host: "127.0.0.1", port });
    } catch (err) {
      error = err;
    }
    await started?.stop();
    assert(started === undefined, "a sink was handed back on a port another program holds");
    assert(String(error).includes("did not listen"), String(error));
  } finally {
    other.close();
    await serving.catch(() => {});
  }
  // Another smtp-sink (another test's) on the port: its greeting is not this one's.
  {
    await using first = await SmtpSink.start();
    let second: SmtpSink | undefined;
    let error: unknown;
    try {
      second = await SmtpSink.start({ host: "127.0.0.1", port: first.port });
    } catch (err) {
      error = err;
    }
    await second?.stop();
    assert(second === undefined, "a sink was handed back on a port another smtp-sink holds");
    assert(String(error).includes("did not listen"), String(error));
  }
  // On a spare port (picked by the helper, tried again if taken) it starts and greets.
  await using sink = await SmtpSink.start();
  assert(sink.port > 0);
});
