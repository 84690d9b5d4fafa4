/**
 * Log lines to stderr. Warnings and errors are written at once, behind whatever waits; info and
 * debug lines wait in one buffer for at most WAIT_MS (or until it is full), so that an MX's line
 * per message and a drain's line per delivered recipient cost one write for many, not one each
 * (a write to a pipe or journald, and the reader it wakes, is most of a line's cost: measured
 * for #13). Order is kept. What waits is written before the process exits (`unload`, which
 * Deno.exit also dispatches) and before Deno reports an uncaught error or an unhandled rejection
 * (`error`, `unhandledrejection`: the lines just before a crash are the ones an operator needs);
 * only a crash of the runtime itself (a panic, out of memory, SIGKILL) can lose the lines of
 * its last WAIT_MS.
 */

/**
 * How long an info or debug line may wait for others to share its write. Written at the end of
 * each turn of the event loop instead, an MX taking one message per connection wrote about once
 * per message, and woke the reader of stderr as often: at 10 sessions of 4 KB messages the write
 * took ~22 µs of serve's thread per message (a CPU profile) and the process reading serve's
 * stderr (the bench's) spent 60-95 µs per message, 20-25 µs with this wait. 20 ms joins dozens
 * of lines at that rate and is still shorter than anyone reads a log.
 */
export const WAIT_MS = 20;

/** Bytes of lines that may wait; a line that does not fit flushes those before it. */
const BATCH_BYTES = 64 * 1024;
const batch = new Uint8Array(BATCH_BYTES);
let batchLength = 0;
let flushing: ReturnType<typeof setTimeout> | undefined;
let isExitHooked = false;
const encoder = new TextEncoder();

/** Writes `line` and a newline to stderr: now when `isUrgent`, else within WAIT_MS. */
export function writeLogLine(line: string, isUrgent: boolean): void {
  if (!appendAscii(line)) {
    // Not ASCII (text-format values are escaped to ASCII: JSON lines may not be), or longer
    // than the buffer: whatever waits first, then this line on its own.
    flushLogLines();
    writeStderr(encoder.encode(line + "\n"));
    return;
  }
  if (isUrgent) {
    flushLogLines();
    return;
  }
  if (!isExitHooked) {
    isExitHooked = true;
    globalThis.addEventListener("unload", flushLogLines);
    // Listening changes nothing else: without preventDefault Deno still reports and exits.
    globalThis.addEventListener("error", flushLogLines);
    globalThis.addEventListener("unhandledrejection", flushLogLines);
  }
  if (flushing === undefined) {
    const timer = setTimeout(flushLogLines, WAIT_MS);
    // Waiting lines never keep the process alive: `unload` writes them at its end.
    Deno.unrefTimer(timer);
    flushing = timer;
  }
}

/** Writes the lines that wait (before other output to stderr, and at exit). */
export function flushLogLines(): void {
  if (flushing !== undefined) clearTimeout(flushing);
  flushing = undefined;
  if (batchLength === 0) return;
  const length = batchLength;
  batchLength = 0;
  writeStderr(batch.subarray(0, length));
}

/**
 * Copies an ASCII line and its newline into the buffer (one `encodeInto`, a fast call: copying a
 * character at a time cost ~1 µs more for a `queued` line, #13); false, with nothing added, for
 * any other line.
 */
function appendAscii(line: string): boolean {
  const n = line.length;
  if (n + 1 > BATCH_BYTES) return false;
  if (n + 1 > BATCH_BYTES - batchLength) flushLogLines();
  const start = batchLength;
  // Room for n octets only: a line with any non-ASCII character needs more, so not all of it
  // is read (what was written past batchLength is not counted and is overwritten later).
  if (encoder.encodeInto(line, batch.subarray(start, start + n)).read !== n) return false;
  batch[start + n] = 0x0a;
  batchLength = start + n + 1;
  return true;
}

/**
 * Writes `bytes` to stderr. When stderr is gone (a log pipe whose reader closed or died, a
 * terminal that went away: BrokenPipe, EIO) the bytes are dropped: a log nobody can read must
 * not take `serve` or a `fetch` in the middle of a drain down with it.
 */
export function writeStderr(bytes: Uint8Array): void {
  try {
    let offset = 0;
    while (offset < bytes.length) offset += Deno.stderr.writeSync(bytes.subarray(offset));
  } catch {
    // Nowhere left to say it.
  }
}
