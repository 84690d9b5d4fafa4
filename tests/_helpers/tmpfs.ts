/**
 * A small tmpfs for disk-full tests (root only): mounted on a new temp directory, filled up on
 * demand, unmounted and removed after. A test that cannot mount one skips with the reason.
 */
const enc = new TextEncoder();

/** Mounts a tmpfs of `size` (`16m`) on a new directory; undefined (after saying why) if it cannot. */
export async function mountTmpfs(testName: string, size: string): Promise<string | undefined> {
  const dir = await Deno.makeTempDir({ prefix: "odmr-tmpfs-" });
  const mount = await new Deno.Command("mount", {
    args: ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir],
    stdout: "null",
    stderr: "piped",
  }).output().catch((err: unknown) => ({ success: false, stderr: enc.encode(String(err)) }));
  if (mount.success) return dir;
  // deno-lint-ignore no-console -- a skip states its reason (docs/architecture.md "Conventions")
  console.log(
    `skip: ${testName}: cannot mount a tmpfs: ${new TextDecoder().decode(mount.stderr).trim()}`,
  );
  await Deno.remove(dir);
  return undefined;
}

/** Unmounts and removes what `mountTmpfs` made. */
export async function unmountTmpfs(dir: string): Promise<void> {
  await new Deno.Command("umount", { args: ["-l", dir] }).output().catch(() => {});
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

/** Writes `path` until its file system is full. */
export function fillUp(path: string): void {
  const f = Deno.openSync(path, { write: true, create: true });
  try {
    for (;;) f.writeSync(new Uint8Array(64 * 1024));
  } catch {
    // ENOSPC: full.
  } finally {
    f.close();
  }
}
