/**
 * The header section reader of the DKIM signer (_headers.ts), for other modules that read a
 * message's header fields as it streams (submission's From check). No logic of its own.
 */
export { HeaderSplitter, type SplitResult } from "./_headers.ts";
export type { HeaderField } from "./canon.ts";
