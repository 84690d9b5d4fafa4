/**
 * A CHUNKING and PIPELINING customer for window tests (the provider's sender on the other end
 * of a connPair): it answers a pipelined group only once its input ran dry (RFC 2920 §3.2, as
 * our receiver does), so each batch of replies shows how many messages the sender had in flight
 * without a reply. Commands and BDAT bodies are read and answered 250; nothing is kept.
 */
import type { MemoryConn } from "./conn_pair.ts";
import { LineReader } from "../../src/wire/line_reader.ts";

/** What the customer saw. */
export interface HoldingCustomer {
  /** Messages (`BDAT … LAST`) read before each batch of replies, in order. */
  readonly batches: number[];
  /** Messages it held unanswered when it closed the connection (`dies`). */
  readonly heldAtDeath: number | undefined;
  /** Resolves when it ended (QUIT, the sender's close, or its own). */
  readonly done: Promise<void>;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

/**
 * Serves `conn`. After each command with no more input here it waits a timer (longer than the
 * sender's batched write, a setImmediate, takes) before it decides that the sender is waiting
 * for replies. `dies`: it then closes the connection instead of answering.
 */
export function holdingCustomer(
  conn: MemoryConn,
  opts: { readonly dies?: boolean } = {},
): HoldingCustomer {
  const seen = { batches: [] as number[], heldAtDeath: undefined as number | undefined };
  const reader = new LineReader(conn);
  const say = (text: string) => conn.write(enc.encode(text));
  const run = async () => {
    await say("220 customer.test ESMTP\r\n");
    let held = "";
    let messages = 0;
    for (;;) {
      const line = await reader.readLine(1000, 5_000);
      if (line.kind !== "line") return;
      const command = dec.decode(line.line);
      const verb = command.split(" ")[0]?.toUpperCase();
      if (verb === "EHLO") {
        await say("250-customer.test\r\n250-PIPELINING\r\n250 CHUNKING\r\n");
        continue;
      }
      if (verb === "QUIT") {
        await say(held + "221 2.0.0 bye\r\n");
        return;
      }
      const bdat = /^BDAT (\d+)( LAST)?$/.exec(command);
      if (bdat !== null) {
        await reader.readExact(Number(bdat[1]), () => {}, 5_000);
        if (bdat[2] !== undefined) messages++;
      }
      held += "250 2.0.0 OK\r\n";
      if (reader.unreadBytes > 0) continue;
      await new Promise((r) => setTimeout(r, 5));
      if (reader.unreadBytes > 0) continue;
      if (opts.dies === true) {
        seen.heldAtDeath = messages;
        conn.destroy();
        return;
      }
      seen.batches.push(messages);
      messages = 0;
      await say(held);
      held = "";
    }
  };
  return {
    get batches() {
      return seen.batches;
    },
    get heldAtDeath() {
      return seen.heldAtDeath;
    },
    done: run(),
  };
}
