import assert from "node:assert/strict";
import { mergePage } from "../../src/queue/_merge_page.ts";

Deno.test("mergePage() merges sorted id streams into one page without duplicates", async (t) => {
  const rows: {
    why: string;
    streams: string[][];
    size: number;
    want: { ids: string[]; isLast: boolean };
  }[] = [
    { why: "no stream: an empty last page", streams: [], size: 3, want: { ids: [], isLast: true } },
    {
      why: "short streams end the walk",
      streams: [["a", "c"], ["b"]],
      size: 3,
      want: { ids: ["a", "b", "c"], isLast: true },
    },
    {
      why: "an id in two streams (one message, two domains) comes once",
      streams: [["a", "b"], ["b"]],
      size: 3,
      want: { ids: ["a", "b"], isLast: true },
    },
    {
      why: "a full stream (N = page size) may hold more: ids above its last wait",
      streams: [["a", "b", "c"], ["d"]],
      size: 3,
      want: { ids: ["a", "b", "c"], isLast: false },
    },
    {
      why: "one short of full (N-1): nothing is held back",
      streams: [["a", "b"], ["d"]],
      size: 3,
      want: { ids: ["a", "b", "d"], isLast: true },
    },
    {
      why: "the union is cut at the page size (N+1 candidates)",
      streams: [["a", "c", "e"], ["b", "d", "f"]],
      size: 3,
      want: { ids: ["a", "b", "c"], isLast: false },
    },
    {
      why: "the smallest last id of the full streams bounds the page",
      streams: [["a", "x", "y"], ["b", "c", "d"], ["e"]],
      size: 3,
      want: { ids: ["a", "b", "c"], isLast: false },
    },
  ];
  for (const row of rows) {
    await t.step(row.why, () => {
      assert.deepEqual(mergePage(row.streams, row.size), row.want);
    });
  }
});

Deno.test("mergePage() walked page by page yields every id once, in order", () => {
  // Three streams with overlaps, walked with the cursor protocol the reader uses.
  const all = [
    Array.from({ length: 50 }, (_, i) => `m${String(i * 3).padStart(4, "0")}`),
    Array.from({ length: 40 }, (_, i) => `m${String(i * 5).padStart(4, "0")}`),
    Array.from({ length: 7 }, (_, i) => `m${String(i * 11 + 1).padStart(4, "0")}`),
  ];
  const want = [...new Set(all.flat())].sort();
  const got: string[] = [];
  let after = "";
  for (let page = 0; page < 100; page++) {
    const streams = all.map((s) => s.filter((id) => id > after).slice(0, 4));
    const { ids, isLast } = mergePage(streams, 4);
    got.push(...ids);
    if (isLast) break;
    after = ids[ids.length - 1] ?? after;
  }
  assert.deepEqual(got, want);
});
