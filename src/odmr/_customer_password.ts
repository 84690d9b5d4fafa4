/**
 * Reads `fetch.password_file`: the first line is the password. Like ssh with private keys,
 * a file that group or others may read (or write) is refused, so a secret is not silently
 * left exposed. Errors are for people and name the file.
 */

/** The password file is unusable; `message` says why and what to do. */
export class PasswordFileError extends Error {
  override readonly name = "PasswordFileError";
}

/** Returns the first line of `path` (without CR/LF), after checking its permissions. */
export async function readPasswordFile(path: string): Promise<string> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    throw new PasswordFileError(`Cannot read password file "${path}": ${errorText(err)}`);
  }
  if (!info.isFile) throw new PasswordFileError(`Cannot read password file "${path}": not a file`);
  // mode is null only on Windows, where POSIX permission bits do not exist.
  const mode = info.mode === null ? 0 : info.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new PasswordFileError(
      `Refusing password file "${path}": permissions ${mode.toString(8).padStart(4, "0")} ` +
        `are too open (group or others may access it); run: chmod 600 "${path}"`,
    );
  }
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (err) {
    throw new PasswordFileError(`Cannot read password file "${path}": ${errorText(err)}`);
  }
  const line = text.split("\n")[0]?.replace(/\r$/, "") ?? "";
  if (line === "") {
    throw new PasswordFileError(`Cannot use password file "${path}": the first line is empty`);
  }
  return line;
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
