import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  formatDuration,
  formatSize,
  parseDurationMs,
  parseSizeBytes,
} from "../../src/config/_units.ts";
import { didYouMean } from "../../src/config/_did_you_mean.ts";

Deno.test("parseDurationMs() reads the units of README.md and refuses the rest", async (t) => {
  const rows: { input: unknown; want: number | undefined; why: string }[] = [
    { input: "30s", want: 30_000, why: "seconds" },
    { input: "5m", want: 300_000, why: "minutes" },
    { input: "2h", want: 7_200_000, why: "hours" },
    { input: "30d", want: 2_592_000_000, why: "days" },
    { input: "250ms", want: 250, why: "milliseconds" },
    { input: "5", want: undefined, why: "a bare number is ambiguous" },
    { input: 5, want: undefined, why: "a YAML number is ambiguous too" },
    { input: "5 minutes", want: undefined, why: "words are not units" },
    { input: "-5s", want: undefined, why: "negative" },
    { input: "1.5h", want: undefined, why: "fractions are not accepted" },
  ];
  for (const row of rows) {
    await t.step(`${JSON.stringify(row.input)}: ${row.why}`, () => {
      assertEquals(parseDurationMs(row.input), row.want);
    });
  }
});

Deno.test("parseSizeBytes() reads bytes and binary multiples", async (t) => {
  const rows: { input: unknown; want: number | undefined; why: string }[] = [
    { input: 1000, want: 1000, why: "a YAML integer is bytes" },
    { input: "1000", want: 1000, why: "a string integer is bytes" },
    { input: "512KB", want: 524_288, why: "KB is 1024 bytes" },
    { input: "50MB", want: 52_428_800, why: "MB is 1024 KB" },
    { input: "50mb", want: 52_428_800, why: "units are case-insensitive" },
    { input: "1GiB", want: 1_073_741_824, why: "IEC spelling is accepted" },
    { input: "50 XB", want: undefined, why: "unknown unit" },
    { input: 1.5, want: undefined, why: "fractions of bytes" },
    { input: -1, want: undefined, why: "negative" },
  ];
  for (const row of rows) {
    await t.step(`${JSON.stringify(row.input)}: ${row.why}`, () => {
      assertEquals(parseSizeBytes(row.input), row.want);
    });
  }
});

Deno.test("formatDuration() and formatSize() print the shortest exact spelling", () => {
  assertEquals(formatDuration(300_000), "5m");
  assertEquals(formatDuration(2_592_000_000), "30d");
  assertEquals(formatDuration(90_000), "90s");
  assertEquals(formatDuration(1_500), "1500ms");
  assertEquals(formatSize(52_428_800), "50MB");
  assertEquals(formatSize(1000), "1000");
});

Deno.test("didYouMean() suggests close keys and nothing for unrelated words", () => {
  assertEquals(didYouMean("max_recipient", ["max_recipients", "timeout"]), "max_recipients");
  assertEquals(didYouMean("lisen", ["listen", "require_tls"]), "listen");
  assertEquals(didYouMean("max-age", ["max_age"]), "max_age");
  assertEquals(didYouMean("colour", ["listen", "require_tls"]), undefined);
});
