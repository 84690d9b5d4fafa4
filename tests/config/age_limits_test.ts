/**
 * The ages maintenance expires and reports at (`queue.max_age`, a domain's `max_age`,
 * `outbound.max_age`, `outbound.delay_notice`) have a floor and a ceiling. Without a floor,
 * `queue.max_age: 1s` bounced every message at the next maintenance pass, before any customer
 * poll could collect it; `outbound.max_age: 1m` bounced mail a greylisting receiver asked to be
 * sent again minutes later; `outbound.delay_notice: 1s` sent a delay report for nearly every
 * message waiting its first try. Without a ceiling, `outbound.max_age: 100000000d` wrote
 * `Will-Retry-Until: Invalid Date` into delay reports. Refused with the key and the bound
 * (check-config and serve exit 2: tests/e2e/smtp_swaks_test.ts); README's config table gives them.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { refusalOf } from "./_parse.ts";

const AGES: {
  key: string;
  text: (value: string) => string;
  floor: string;
  under: string[];
}[] = [
  {
    key: "queue.max_age",
    text: (v) => `queue: {max_age: ${v}}`,
    floor: "1h",
    under: ["1s", "59m"],
  },
  {
    key: "domains.example.org.max_age",
    text: (v) => `domains: {example.org: {max_age: ${v}}}`,
    floor: "1h",
    under: ["1s", "3599s"],
  },
  {
    key: "outbound.max_age",
    text: (v) => `outbound: {max_age: ${v}}`,
    floor: "1h",
    under: ["1m", "59m"],
  },
  {
    key: "outbound.delay_notice",
    text: (v) => `outbound: {delay_notice: ${v}}`,
    floor: "30m",
    under: ["1s", "29m"],
  },
];

const CEILING = "3650d";

function refusal(key: string, bound: string, value: string): string {
  return `Cannot load config "/etc/odmr.yaml": ${key} must be at ${bound}: current value is ` +
    `"${value}"`;
}

Deno.test("expiry ages have a floor: below it they are refused with the key and the bound", async (t) => {
  for (const { key, text, floor, under } of AGES) {
    await t.step(`${key}: ${floor} loads`, () => {
      assertEquals(refusalOf(text(floor)), undefined);
    });
    await t.step(`${key}: ${under.join(", ")} are refused`, () => {
      for (const value of under) {
        assertEquals(refusalOf(text(value)), refusal(key, `least ${floor}`, value));
      }
    });
  }
});

Deno.test("expiry ages have a ceiling of 3650d: longer is refused with the key", async (t) => {
  for (const { key, text } of AGES) {
    // delay_notice must also stay shorter than outbound.max_age (the default 5d).
    const full = key === "outbound.delay_notice"
      ? (v: string) => `outbound: {max_age: ${CEILING}, delay_notice: ${v}}`
      : text;
    await t.step(`${key}: 3649d loads, 3651d and 100000000d are refused`, () => {
      assertEquals(refusalOf(full("3649d")), undefined);
      for (const value of ["3651d", "100000000d"]) {
        assertEquals(refusalOf(full(value)), refusal(key, `most ${CEILING}`, value));
      }
    });
  }
  await t.step("queue.max_age and outbound.max_age: 3650d loads", () => {
    assertEquals(refusalOf(`queue: {max_age: ${CEILING}}`), undefined);
    assertEquals(refusalOf(`outbound: {max_age: ${CEILING}}`), undefined);
  });
});

Deno.test("outbound.delay_notice stays shorter than outbound.max_age at the floors", () => {
  assertEquals(refusalOf("outbound: {max_age: 1h, delay_notice: 30m}"), undefined);
  assertEquals(
    refusalOf("outbound: {max_age: 1h, delay_notice: 1h}"),
    'Cannot load config "/etc/odmr.yaml": outbound.delay_notice must be shorter than ' +
      "outbound.max_age",
  );
});
