/**
 * The durations that become a timer (`smtp.timeout`, `odmr.auth_timeout`, `fetch.interval`)
 * are at most 24d. A timer cannot wait longer than 2^31-1 ms (about 24.8 days): Deno fires a
 * longer one after 1 ms, so `smtp.timeout: 30d` made serve re-arm its read deadline every
 * millisecond (a busy CPU and a TimeoutOverflowWarning a millisecond on stderr) and
 * `fetch.interval: 30d` polled the provider again at once, in a loop. Refused with the key.
 * They also have a floor: `smtp.timeout: 1ms` cut every session before its first command, and
 * `fetch.interval: 1ms` polled the provider in a loop (1s for the two timeouts, 10s for the
 * poll interval; README's config table gives them).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { refusalOf } from "./_parse.ts";
const FETCH = "fetch: {server: relay.example.net, user: alice, password_file: pw";

const KEYS: { key: string; text: (value: string) => string; floor: string; under: string[] }[] = [
  {
    key: "smtp.timeout",
    text: (v) => `smtp: {timeout: ${v}}`,
    floor: "1s",
    under: ["1ms", "999ms"],
  },
  {
    key: "odmr.auth_timeout",
    text: (v) => `odmr: {auth_timeout: ${v}}`,
    floor: "1s",
    under: ["1ms", "999ms"],
  },
  {
    key: "odmr.drain_timeout",
    text: (v) => `odmr: {drain_timeout: ${v}}`,
    floor: "1s",
    under: ["1ms", "999ms"],
  },
  {
    key: "submission.auth_timeout",
    text: (v) => `submission: {listen: ["127.0.0.1:587"], auth_timeout: ${v}}`,
    floor: "1s",
    under: ["1ms", "999ms"],
  },
  {
    key: "fetch.interval",
    text: (v) => `${FETCH}, interval: ${v}}`,
    floor: "10s",
    under: ["1ms", "9999ms", "9s"],
  },
];

Deno.test("timer durations take 24d, the longest a timer holds, and refuse more", async (t) => {
  for (const { key, text } of KEYS) {
    await t.step(`${key}: 24d and 576h load`, () => {
      assertEquals(refusalOf(text("24d")), undefined);
      assertEquals(refusalOf(text("576h")), undefined);
    });
    await t.step(`${key}: 24d plus 1ms, 25d and 30d are refused with the key`, () => {
      for (const value of ["2073600001ms", "25d", "30d"]) {
        assertEquals(
          refusalOf(text(value)),
          `Cannot load config "/etc/odmr.yaml": ${key} must be at most 24d (longer than a ` +
            `timer can wait): current value is "${value}"`,
        );
      }
    });
  }
});

Deno.test("timer durations have a floor: below it they are refused with the key and the bound", async (t) => {
  for (const { key, text, floor, under } of KEYS) {
    await t.step(`${key}: ${floor} loads`, () => {
      assertEquals(refusalOf(text(floor)), undefined);
    });
    await t.step(`${key}: ${under.join(", ")} are refused`, () => {
      for (const value of under) {
        assertEquals(
          refusalOf(text(value)),
          `Cannot load config "/etc/odmr.yaml": ${key} must be at least ${floor}: current ` +
            `value is "${value}"`,
        );
      }
    });
  }
});
