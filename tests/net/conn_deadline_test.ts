/**
 * Read deadlines of SocketConn and NativeConn on one timer shared by every connection (issue 13 item 4: no
 * timer set and cleared for every read, nor for every connection): a read still times out at
 * its own deadline, also after reads with longer or shorter deadlines on this connection or
 * another, and data in time wins. A read that ended leaves the shared set, and the shared timer
 * never keeps a process alive.
 */
import { deepStrictEqual as assertEquals, rejects } from "node:assert/strict";
import { TimeoutError } from "../../src/net/conn.ts";
import { ReadDeadlines, readDeadlines } from "../../src/net/_read_deadlines.ts";
import { CONN_KINDS } from "../_helpers/socket_pair.ts";
import { until } from "../_helpers/wait_until.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();

for (const { name, withPair } of CONN_KINDS) {
  Deno.test(`${name}: a read times out at its deadline after an earlier read with a long one (#13)`, async () => {
    await withPair(async (conn, peer) => {
      const first = conn.read(60_000);
      await peer.write(enc.encode("hello"));
      assertEquals(dec.decode((await first) ?? new Uint8Array()), "hello");
      // The timer armed for 60 s must not hold this read: it fails after about 50 ms.
      const started = performance.now();
      await rejects(conn.read(50), TimeoutError);
      const waited = performance.now() - started;
      if (waited > 30_000) {
        throw new Error(`the short deadline waited for the long one: ${waited} ms`);
      }
    });
  });

  Deno.test(`${name}: data arriving before the deadline wins, later reads still time out (#13)`, async () => {
    await withPair(async (conn, peer) => {
      for (let i = 0; i < 3; i++) {
        const read = conn.read(30);
        await peer.write(enc.encode(`m${i}`));
        assertEquals(dec.decode((await read) ?? new Uint8Array()), `m${i}`);
      }
      await rejects(conn.read(20), TimeoutError);
      // After a timeout the connection still reads what comes next.
      const again = conn.read(60_000);
      await peer.write(enc.encode("late"));
      assertEquals(dec.decode((await again) ?? new Uint8Array()), "late");
    });
  });

  Deno.test(`${name}: a read without a deadline waits; the peer closing ends it (#13)`, async () => {
    await withPair(async (conn, peer) => {
      const read = conn.read();
      peer.close();
      assertEquals(await read, null);
    });
  });

  Deno.test(`${name}: readableBytes counts what was received and not read yet, without reading (#13)`, async () => {
    await withPair(async (conn, peer) => {
      assertEquals(conn.readableBytes, 0);
      await peer.write(enc.encode("MAIL FROM:<a@b.test>\r\n"));
      await until("the bytes to arrive", () => conn.readableBytes > 0, 5_000, 5);
      assertEquals(conn.readableBytes, 22);
      assertEquals(
        dec.decode((await conn.read(1_000)) ?? new Uint8Array()),
        "MAIL FROM:<a@b.test>\r\n",
      );
      assertEquals(conn.readableBytes, 0);
    });
  });

  Deno.test(`${name}: a short deadline on one connection is not held by a long one on another (#13)`, async () => {
    await withPair(async (a) => {
      await withPair(async (b) => {
        // The shared timer is armed for a's 60 s first; b's read must still end after ~50 ms.
        const long = a.read(60_000);
        const started = performance.now();
        await rejects(b.read(50), TimeoutError);
        const waited = performance.now() - started;
        if (waited > 30_000) throw new Error(`b's deadline waited for a's: ${waited} ms`);
        a.destroy();
        assertEquals(await long, null);
      });
    });
  });

  Deno.test(`${name}: reads that ended leave the shared deadlines: none is left behind (#13)`, async () => {
    const before = readDeadlines.size;
    await withPair(async (conn, peer) => {
      for (let i = 0; i < 5; i++) {
        const read = conn.read(60_000);
        assertEquals(readDeadlines.size, before + 1);
        await peer.write(enc.encode(`m${i}`));
        await read;
        assertEquals(readDeadlines.size, before);
      }
      await rejects(conn.read(10), TimeoutError);
      assertEquals(readDeadlines.size, before);
      // A read waiting when the connection is closed leaves with it.
      const pending = conn.read(60_000);
      assertEquals(readDeadlines.size, before + 1);
      conn.destroy();
      assertEquals(await pending, null);
      assertEquals(readDeadlines.size, before);
    });
  });
}

Deno.test("the shared deadline timer does not keep a process alive (#13)", async () => {
  // A process whose only connection read with a 10-minute deadline and closed must exit at
  // once (fetch --once ends this way), not when that deadline's timer would have fired.
  const conn = new URL("../../src/net/conn.ts", import.meta.url).href;
  const script = `
    import net from "node:net";
    import { SocketConn } from "${conn}";
    const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const accepted = l.accept();
    const s = net.connect({ host: "127.0.0.1", port: l.addr.port });
    await new Promise((r) => s.once("connect", r));
    const peer = await accepted;
    l.close();
    const c = new SocketConn(s);
    const read = c.read(600_000);
    await peer.write(new TextEncoder().encode("x"));
    await read;
    await c.close();
    peer.close();
    console.log("done");
  `;
  const started = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=ts", script],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const out = await child.output();
  clearTimeout(timer);
  const ms = performance.now() - started;
  assertEquals(
    new TextDecoder().decode(out.stdout).trim(),
    "done",
    new TextDecoder().decode(out.stderr),
  );
  if (ms > 30_000) throw new Error(`the process stayed alive ${ms.toFixed(0)} ms after its work`);
});

Deno.test("ReadDeadlines: waiters that left, from any place, never expire; the rest expire once each (#13)", async () => {
  const set = new ReadDeadlines();
  const expired: string[] = [];
  const at = performance.now();
  const waiter = (name: string, ms: number) => ({
    deadlineAt: at + ms,
    expire: () => expired.push(name),
    slot: -1,
  });
  const [a, b, c, d] = [waiter("a", 20), waiter("b", 30), waiter("c", 40), waiter("d", 60)];
  for (const w of [a, b, c, d, b]) set.add(w); // b twice: once in the set
  assertEquals(set.size, 4);
  set.delete(b); // from the middle
  set.delete(a); // the earliest: the timer finds nothing for it
  set.delete(a);
  assertEquals(set.size, 2);
  await until("c and d expire", () => expired.length === 2, 5_000, 5);
  assertEquals(expired, ["c", "d"]);
  assertEquals(set.size, 0);
});
