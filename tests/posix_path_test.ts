/**
 * src/posix_path.ts against `node:path` (posix, what Deno's node:path is on Linux): the same
 * result for every generated path, "." and ".." segments, repeated and trailing slashes included.
 */
import { equal } from "node:assert/strict";
import nodePath from "node:path";
import fc from "fast-check";
import { dirname, join, resolve } from "../src/posix_path.ts";

/** Paths built from the segments that matter to normalization. */
const segment = fc.constantFrom("", ".", "..", "a", "bc", "d.e", "..f", "g..", " ", "%2F", "ü");
const path = fc.array(segment, { maxLength: 8 }).map((s) => s.join("/"));
const absoluteOrNot = fc.tuple(fc.boolean(), path).map(([abs, p]) => abs ? `/${p}` : p);

Deno.test("join equals node:path's join", () => {
  fc.assert(
    fc.property(fc.array(absoluteOrNot, { maxLength: 4 }), (parts) => {
      equal(join(...parts), nodePath.posix.join(...parts), JSON.stringify(parts));
    }),
    { numRuns: 5000 },
  );
  for (const parts of [[], [""], ["/"], ["//"], ["./"], ["a/", ""], ["/a", "../.."], ["..", "a"]]) {
    equal(join(...parts), nodePath.posix.join(...parts), JSON.stringify(parts));
  }
});

Deno.test("dirname equals node:path's dirname", () => {
  fc.assert(
    fc.property(absoluteOrNot, (p) => {
      equal(dirname(p), nodePath.posix.dirname(p), JSON.stringify(p));
    }),
    { numRuns: 5000 },
  );
  for (const p of ["", "/", "//", "///", "a", "/a", "//a", "a/", "a//b//", "/a/b/"]) {
    equal(dirname(p), nodePath.posix.dirname(p), JSON.stringify(p));
  }
});

Deno.test("resolve equals node:path's resolve (relative parts against the working directory)", () => {
  fc.assert(
    fc.property(fc.array(absoluteOrNot, { maxLength: 4 }), (parts) => {
      equal(resolve(...parts), nodePath.posix.resolve(...parts), JSON.stringify(parts));
    }),
    { numRuns: 5000 },
  );
  for (
    const parts of [[], [""], ["/"], ["/a/b", "../c/"], ["/etc", "odmr.yaml"], ["a", "/b", "c"]]
  ) {
    equal(resolve(...parts), nodePath.posix.resolve(...parts), JSON.stringify(parts));
  }
});
