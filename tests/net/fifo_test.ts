/**
 * Fifo (src/net/_fifo.ts), the queue under a connection's reads and writes: items come out in
 * the order they went in, whether the queue empties between them (an MX session: one command,
 * one reply) or never empties (its storage is reused from the front), and nothing taken out
 * comes back (#13).
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { Fifo } from "../../src/net/_fifo.ts";

Deno.test("Fifo keeps order when it empties between items (#13)", () => {
  const q = new Fifo<number>();
  for (let i = 0; i < 1000; i++) {
    q.push(i);
    assertEquals(q.length, 1);
    assertEquals(q.at(0), i);
    assertEquals(q.shift(), i);
    assertEquals(q.shift(), undefined);
    assertEquals(q.length, 0);
  }
});

Deno.test("Fifo keeps order when it never empties, and at() reads from the front (#13)", () => {
  const q = new Fifo<number>();
  const model: number[] = [];
  let next = 0;
  // Seeded steps: two in, one out, with bursts, so the front moves while items stay.
  let seed = 7;
  for (let step = 0; step < 20_000; step++) {
    seed = (seed * 1103515245 + 12345) % 2147483648;
    const pushes = seed % 3;
    for (let k = 0; k < pushes; k++) {
      q.push(next);
      model.push(next++);
    }
    if (model.length > 0 && (seed >> 8) % 2 === 0) assertEquals(q.shift(), model.shift());
    assertEquals(q.length, model.length);
    const probe = model.length === 0 ? 0 : (seed >> 4) % model.length;
    assertEquals(q.at(probe), model[probe]);
    assertEquals(q.at(model.length), undefined);
  }
  assertEquals(q.clear(), model);
  assertEquals(q.length, 0);
  assertEquals(q.shift(), undefined);
});
