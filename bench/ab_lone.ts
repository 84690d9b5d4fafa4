// A lone sender's time per SMTP step, A/B of two builds (issue 13, s1): one `serve` from each tree
// side by side and one client that sends as `smtp-source -s 1` does (a new connection per message,
// HELO, MAIL, RCPT, DATA, a 4 KB body, QUIT; no pipelining), the messages interleaved: message i
// goes to A when i is even, else to B (each pair A B, then B A). Load from elsewhere (other processes, the shared disk) then
// falls on both within microseconds, not within a round: batches alternating A then B moved every
// step 20-40% from one round to the next on a loaded machine, so that a 25 µs change in one step
// could not be seen; interleaved, the steps neither build changes agree within a few percent.
// Prints, per round, each step's median for A and B (µs), and at the end, per step, B - A over
// the rounds and how often B was faster. Not part of `deno task bench`; run it under the lock:
//   flock -o /tmp/odmr-bench.lock deno run -A bench/ab_lone.ts /work/main /work/my-tree 6 600
// (tree A, tree B, rounds, messages per round and build). Differs from smtp-source in one way: the
// client closes with a FIN after the 221 (smtp-source resets: SO_LINGER {1,0}, not in Deno's API).

const DOMAIN = "bench.example";
const STEPS = ["connect→220", "HELO", "MAIL", "RCPT", "DATA→354", "body→250", "QUIT→221"] as const;

/** The part of a tree's bench/_serve.ts this uses. */
interface TreeServe {
  readonly smtpPort: number;
  stop(): Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();
const COMMANDS = [
  "HELO bench.localdomain\r\n",
  "MAIL FROM:<sender@source.example>\r\n",
  `RCPT TO:<u@${DOMAIN}>\r\n`,
  "DATA\r\n",
].map((c) => enc.encode(c));
const QUIT = enc.encode("QUIT\r\n");

/** About 4 KB in 80-octet lines, as smtp-source's `-l 4096`, with the end of data. */
function body(): Uint8Array {
  const line = "La".repeat(39) + "\r\n";
  return enc.encode(
    `From: <sender@source.example>\r\nTo: <u@${DOMAIN}>\r\nSubject: lone\r\n\r\n` +
      line.repeat(52) + ".\r\n",
  );
}

async function writeAll(conn: Deno.Conn, bytes: Uint8Array): Promise<void> {
  for (let off = 0; off < bytes.length;) off += await conn.write(bytes.subarray(off));
}

/** Reads until a complete last reply line; throws unless it starts with `code`. */
async function expect(conn: Deno.Conn, buf: Uint8Array, code: string): Promise<void> {
  let text = "";
  for (;;) {
    const n = await conn.read(buf);
    if (n === null) throw new Error(`connection closed while waiting for ${code}`);
    text += dec.decode(buf.subarray(0, n));
    if (!text.endsWith("\r\n")) continue;
    const lines = text.slice(0, -2).split("\r\n");
    const last = lines[lines.length - 1] ?? "";
    if (last[3] === "-") continue;
    if (!last.startsWith(code)) throw new Error(`expected ${code}, got "${last}"`);
    return;
  }
}

/** One message on a connection of its own; µs per step. */
async function oneMessage(port: number, data: Uint8Array, buf: Uint8Array): Promise<number[]> {
  const times: number[] = [];
  let t = performance.now();
  const lap = () => {
    const now = performance.now();
    times.push((now - t) * 1000);
    t = now;
  };
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    conn.setNoDelay(true);
    await expect(conn, buf, "220");
    lap();
    for (const [i, cmd] of COMMANDS.entries()) {
      await writeAll(conn, cmd);
      await expect(conn, buf, i === 3 ? "354" : "250");
      lap();
    }
    await writeAll(conn, data);
    await expect(conn, buf, "250");
    lap();
    await writeAll(conn, QUIT);
    await expect(conn, buf, "221");
    lap();
  } finally {
    conn.close();
  }
  return times;
}

function median(xs: readonly number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
}

const [treeA, treeB, roundsArg, messagesArg] = Deno.args;
if (treeA === undefined || treeB === undefined) {
  throw new Error("usage: ab_lone.ts TREE_A TREE_B [rounds] [messages per round and build]");
}
const rounds = Number(roundsArg ?? 6);
const perRound = Number(messagesArg ?? 600);
const trees = [treeA, treeB];
const dirs: string[] = [];
const serves: TreeServe[] = [];
/** Per step, per round: [A's median, B's median]. */
const medians: [number, number][][] = STEPS.map(() => []);
try {
  for (const tree of trees) {
    // A tree given relative to the working directory, not to this file.
    const root = new URL(`${tree.replace(/\/$/, "")}/`, `file://${Deno.cwd()}/`);
    const { Serve } = await import(new URL("bench/_serve.ts", root).href);
    const dir = await Deno.makeTempDir({ prefix: "odmr-bench-lone-" });
    dirs.push(dir);
    serves.push(await Serve.start({ dir, domain: DOMAIN }));
  }
  const data = body();
  const buf = new Uint8Array(16 * 1024);
  const ports = serves.map((s) => s.smtpPort);
  // Warm-up: the JIT and the first WAL pages of each serve.
  for (let i = 0; i < 200; i++) await oneMessage(ports[i % 2] ?? 0, data, buf);
  for (let round = 0; round < rounds; round++) {
    const runs: number[][][] = [[], []];
    for (let i = 0; i < 2 * perRound; i++) {
      // A B, then B A: the second of two messages in a row read ~3 µs slower in every step.
      const t = (i + (i >> 1)) % 2;
      runs[t]?.push(await oneMessage(ports[t] ?? 0, data, buf));
    }
    const cells = STEPS.map((_, s) => {
      const ab = [0, 1].map((t) => median((runs[t] ?? []).map((m) => m[s] ?? NaN))) as [
        number,
        number,
      ];
      medians[s]?.push(ab);
      return `${ab[0].toFixed(0)}>${ab[1].toFixed(0)}`;
    });
    const totals = [0, 1].map((t) => median((runs[t] ?? []).map((m) => m.reduce((x, y) => x + y))));
    // deno-lint-ignore no-console -- a bench prints its figures
    console.log(
      `round ${round + 1} (A>B µs): ` + STEPS.map((s, i) => `${s} ${cells[i]}`).join(" | ") +
        ` | total ${totals[0]?.toFixed(0)}>${totals[1]?.toFixed(0)}`,
    );
  }
} finally {
  for (const serve of serves) await serve.stop();
  for (const dir of dirs) await Deno.remove(dir, { recursive: true });
}
// deno-lint-ignore no-console -- a bench prints its figures
console.log(`B = ${treeB}, A = ${treeA}; per step, B - A (µs), median over rounds [each round]:`);
for (const [s, name] of STEPS.entries()) {
  const diffs = (medians[s] ?? []).map(([a, b]) => b - a);
  // deno-lint-ignore no-console -- a bench prints its figures
  console.log(
    `  ${name}: ${Math.round(median(diffs)) || 0} [${
      diffs.map((d) => (Math.round(d) || 0).toString()).join(" ")
    }]; ` +
      `B faster in ${diffs.filter((d) => d < 0).length} of ${diffs.length}`,
  );
}
