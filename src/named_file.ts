/**
 * Reading a file that the config names (certificates, keys, password files, `fetch.ca`) or a DKIM
 * key: a regular file of at most MAX_NAMED_FILE_BYTES, checked before it is opened (a FIFO would
 * wait for a writer for ever, a device such as /dev/zero fill memory without end) and read no
 * further than that if it grows meanwhile. The same bound as the config file itself
 * (src/config/load.ts). Every layer may import this file; it imports nothing.
 */

/** The largest file read (a CA bundle of every public root is ~220 KB, a certificate chain ~5 KB). */
export const MAX_NAMED_FILE_BYTES = 1024 * 1024;
/** MAX_NAMED_FILE_BYTES for people. */
export const MAX_NAMED_FILE_TEXT = "1 MiB";

/** The file is not a regular file or is too large; its message says which ("larger than 1 MiB"). */
export class NamedFileError extends Error {
  override readonly name = "NamedFileError";
}

/** Why `info` is refused, or undefined when it may be read. */
export function namedFileFault(info: Deno.FileInfo): string | undefined {
  if (!info.isFile) return "not a regular file";
  if (info.size > MAX_NAMED_FILE_BYTES) return `larger than ${MAX_NAMED_FILE_TEXT}`;
  return undefined;
}

/** The bytes of `path`; throws NamedFileError (or the file system's error). */
export async function readNamedFile(path: string): Promise<Uint8Array> {
  const fault = namedFileFault(await Deno.stat(path)); // before the open, which blocks on a FIFO
  if (fault !== undefined) throw new NamedFileError(fault);
  using file = await Deno.open(path);
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const chunk = new Uint8Array(64 * 1024);
    const n = await file.read(chunk);
    if (n === null) return joined(chunks, length);
    length += n;
    if (length > MAX_NAMED_FILE_BYTES) {
      throw new NamedFileError(`larger than ${MAX_NAMED_FILE_TEXT}`);
    }
    chunks.push(chunk.subarray(0, n));
  }
}

/** readNamedFile, synchronously (the TLS certificate's reload runs in a synchronous step). */
export function readNamedFileSync(path: string): Uint8Array {
  const fault = namedFileFault(Deno.statSync(path));
  if (fault !== undefined) throw new NamedFileError(fault);
  using file = Deno.openSync(path);
  const chunks: Uint8Array[] = [];
  let length = 0;
  for (;;) {
    const chunk = new Uint8Array(64 * 1024);
    const n = file.readSync(chunk);
    if (n === null) return joined(chunks, length);
    length += n;
    if (length > MAX_NAMED_FILE_BYTES) {
      throw new NamedFileError(`larger than ${MAX_NAMED_FILE_TEXT}`);
    }
    chunks.push(chunk.subarray(0, n));
  }
}

/** The text of readNamedFile (UTF-8). */
export async function readNamedTextFile(path: string): Promise<string> {
  return new TextDecoder().decode(await readNamedFile(path));
}

function joined(chunks: readonly Uint8Array[], length: number): Uint8Array {
  if (chunks.length === 1) return chunks[0] as Uint8Array;
  const out = new Uint8Array(length);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}
