// Postfix's smtp-sink on a spare 127.0.0.1 port (or a given address): the receiving end of the
// drain and outbound benchmarks and the ceiling of the ingest benchmark. `-c` makes it print running counters, which tell how
// many messages it has accepted.

import { freePort, sleep, spawn, type Spawned, stop } from "./_proc.ts";

/** Path of the smtp-sink binary (Debian's postfix package). */
export const SMTP_SINK = "/usr/sbin/smtp-sink";

/** A running smtp-sink. */
export class SmtpSink {
  readonly port: number;
  readonly #proc: Spawned;

  constructor(port: number, proc: Spawned) {
    this.port = port;
    this.#proc = proc;
  }

  /**
   * Starts smtp-sink and waits until it accepts connections: on a spare 127.0.0.1 port, or on
   * `at` (e.g. 127.0.0.25:25, where an MX record points; port 25 needs root); with `dumpFile`
   * it keeps what it receives there.
   */
  static async start(
    at?: { host: string; port: number },
    opts: { dumpFile?: string } = {},
  ): Promise<SmtpSink> {
    const host = at?.host ?? "127.0.0.1";
    const port = at?.port ?? freePort();
    // -u postfix: smtp-sink refuses to keep root privileges. Backlog 1024 so 50 parallel
    // sessions never see a refused connection.
    const proc = spawn("smtp-sink", SMTP_SINK, [
      "-u",
      "postfix",
      "-c",
      // -D: every transaction appended to one file (the postfix user must be able to write it).
      ...(opts.dumpFile === undefined ? [] : ["-D", opts.dumpFile]),
      `${host}:${port}`,
      "1024",
    ]);
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      try {
        const c = await Deno.connect({ hostname: host, port });
        c.close();
        return new SmtpSink(port, proc);
      } catch {
        await sleep(20);
      }
    }
    await stop(proc);
    throw new Error(`smtp-sink did not listen on ${host}:${port}: ${proc.tail.join(" | ")}`);
  }

  /** Messages accepted so far (from the last `mesg=N` counter line). */
  messages(): number {
    return this.#counter("mesg");
  }

  /** SMTP sessions so far (from the last `sess=N` counter line). */
  sessions(): number {
    return this.#counter("sess");
  }

  #counter(name: "mesg" | "sess"): number {
    const pattern = new RegExp(`${name}=(\\d+)`);
    for (let i = this.#proc.tail.length - 1; i >= 0; i--) {
      const m = this.#proc.tail[i]?.match(pattern);
      if (m?.[1] !== undefined) return Number(m[1]);
    }
    return 0;
  }

  /** Waits until `messages()` ≥ n (polls every 20 ms, up to `timeoutMs`); returns whether it did. */
  async waitMessages(n: number, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.messages() >= n) return true;
      await sleep(20);
    }
    return this.messages() >= n;
  }

  /** Stops this smtp-sink (by its PID). */
  stop(): Promise<void> {
    return stop(this.#proc);
  }
}
