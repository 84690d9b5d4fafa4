/**
 * Temporary data directories for tests that need a real SQLite file. The directory is
 * removed after `fn` finishes, whether it passed or threw.
 */

/** Runs `fn` with a fresh temporary data directory, then removes it. */
export async function withTempDataDir<T>(fn: (dataDir: string) => Promise<T> | T): Promise<T> {
  const dataDir = await Deno.makeTempDir({ prefix: "odmr-test-" });
  try {
    return await fn(dataDir);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
}

/** Size of the file at `path` in bytes; 0 when there is none (a WAL not created yet). */
export function fileBytes(path: string): number {
  try {
    return Deno.statSync(path).size;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return 0;
    throw err;
  }
}
