/**
 * One page of a body read from the chunk rows, for both stores' readers: each row must be the
 * chunk after the last (a hole stops the read: nextChunkBytes), and a short page must end at
 * the last chunk counted before the read (checkChunksEnd). Each chunk handed out is counted
 * for BODY_GARBAGE.
 */
import { checkChunksEnd, nextChunkBytes } from "./_rows.ts";
import { BODY_GARBAGE } from "./_body_garbage.ts";

/** Body chunks fetched per query (64 KiB each: 1 MiB in memory at most). */
export const CHUNK_PAGE_SIZE = 16;

/** Where a body read stands: the seq of the last chunk yielded, and the chunks counted. */
export interface BodyReadAt {
  readonly afterSeq: number;
  readonly count: number;
}

/**
 * Yields the bytes of one page of chunk rows of `messageId`; returns the seq of the last, or
 * undefined when this page was the last (shorter than CHUNK_PAGE_SIZE) and ended where it must.
 */
export function* bodyPage(
  messageId: string,
  rows: readonly unknown[],
  at: BodyReadAt,
): Generator<Uint8Array, number | undefined> {
  let afterSeq = at.afterSeq;
  for (const raw of rows) {
    const bytes = nextChunkBytes(messageId, raw, afterSeq);
    afterSeq++;
    BODY_GARBAGE.read(bytes.length);
    yield bytes;
  }
  if (rows.length < CHUNK_PAGE_SIZE) {
    // A page short of the chunks counted (review rev14 F1).
    checkChunksEnd(messageId, afterSeq, at.count);
    return undefined;
  }
  return afterSeq;
}
