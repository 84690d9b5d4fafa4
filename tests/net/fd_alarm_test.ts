/**
 * FdAlarm (src/net/fd_alarm.ts): one `fd_exhausted` line per episode of EMFILE/ENFILE, however
 * many failures; `fd_recovered` when a descriptor is had again; episodes that come back within
 * LOG_INTERVAL_MS of the last line are counted into the next one, not logged each; other errors
 * are not its business (session 18).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { FdAlarm, LOG_INTERVAL_MS } from "../../src/net/fd_alarm.ts";
import { type RecordedEvent, recordingLogger } from "../_helpers/recording_logger.ts";

const emfile = () =>
  Object.assign(new Error("Too many open files (os error 24)"), { code: "EMFILE" });

Deno.test("FdAlarm: one line per episode, flapping episodes at most one line per LOG_INTERVAL_MS (session 18)", () => {
  const events: RecordedEvent[] = [];
  let now = 1_000_000;
  const alarm = new FdAlarm(recordingLogger(events), () => now);
  const seen = () => events.map((e) => [e.event, e.fields.failures]);
  assertEquals(alarm.failed("accept a", new Error("connection reset")), false);
  alarm.ok();
  assertEquals(seen(), []);
  for (let i = 0; i < 50; i++) assertEquals(alarm.failed("accept a", emfile()), true);
  now += 2_000;
  alarm.ok();
  alarm.ok();
  assertEquals(seen(), [["fd_exhausted", 1], ["fd_recovered", 49]]);
  // Back within the interval: counted, not logged, and so is its end.
  now += 1_000;
  alarm.failed("accept a", emfile());
  alarm.failed("accept b", emfile());
  alarm.ok();
  assertEquals(events.length, 2);
  now += LOG_INTERVAL_MS;
  alarm.failed("accept b", emfile());
  assertEquals(seen().at(-1), ["fd_exhausted", 3]);
  assertEquals(events.at(-1)?.fields.where, "accept b");
});
