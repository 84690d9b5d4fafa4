/**
 * Reading one body back from the body folder (_body_files.ts): a whole file (schema step 8) or
 * a body in a segment file (_body_segment.ts), checked against its row's size before the first
 * byte and after the last.
 */
import { join } from "node:path";
import { errorText } from "../errors.ts";
import { parseBodyName } from "./_body_segment.ts";

/**
 * The body a row names `name` in the body folder `dir`, `readBytes` at a time (each a new
 * buffer: the reader may keep it). Throws when its file is missing or does not hold its `size`
 * bytes: a body with a hole is never sent. A whole file (written before step 9) must hold exactly `size`; a name of
 * step 10 says the body's length, which must be `size` (a row's `size` lowered or raised would
 * send part of the body, or the next one's bytes with it).
 */
export function* readBody(
  dir: string,
  readBytes: number,
  id: string,
  name: string,
  size: number,
): Generator<Uint8Array> {
  let file: Deno.FsFile;
  const place = parseBodyName(name);
  try {
    if (place === undefined) throw new Error(`"${name}" is not a body file's name`);
    if (place.length !== undefined && place.length !== size) {
      throw new Error(`its row says ${size} bytes, its name ${place.length}: stored damaged`);
    }
    file = Deno.openSync(join(dir, place.file), { read: true });
  } catch (err) {
    throw new Error(`Cannot read body of message "${id}": ${errorText(err)}`);
  }
  try {
    const whole = place.offset === undefined;
    // Checked before the first byte too: a reader that stops early (a report's prefix) gets
    // no part of a body its file does not hold whole.
    const end = (place.offset ?? 0) + size;
    const held = file.statSync().size;
    if (whole ? held !== size : held < end) {
      throw new Error(
        `Cannot read body of message "${id}": its file holds ${held} bytes, not ${end}`,
      );
    }
    if (!whole) file.seekSync(place.offset, Deno.SeekMode.Start);
    let total = 0;
    // A whole file is read one byte past its size: it must end there.
    while (whole || total < size) {
      const buffer = new Uint8Array(Math.min(readBytes, Math.max(1, size - total)));
      const n = file.readSync(buffer);
      if (n === null || n === 0) break;
      total += n;
      if (total > size) break;
      yield n === buffer.length ? buffer : buffer.subarray(0, n);
    }
    if (total !== size) {
      throw new Error(
        `Cannot read body of message "${id}": its file holds ${total} bytes, not ${size}`,
      );
    }
  } finally {
    file.close();
  }
}
