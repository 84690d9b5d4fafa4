/**
 * Reads the customer's secrets: `fetch.password_file` (the first line is the password) and
 * `fetch.client_key` (a PEM private key). Like ssh with private keys, a file that group or
 * others may read (or write) is refused, so a secret is not silently left exposed. Errors are
 * for people and name the file.
 */
import { errorText } from "../errors.ts";
import { namedFileFault, readNamedTextFile } from "../named_file.ts";

/** The password file is unusable; `message` says why and what to do. */
export class PasswordFileError extends Error {
  override readonly name = "PasswordFileError";
}

/** Returns the first line of `path` (without CR/LF), after checking its permissions. */
export async function readPasswordFile(path: string): Promise<string> {
  const text = await readPrivateFile(path, "password file (fetch.password_file)");
  const line = text.split("\n")[0]?.replace(/\r$/, "") ?? "";
  if (line === "") {
    throw new PasswordFileError(`Cannot use password file "${path}": the first line is empty`);
  }
  return line;
}

/** The PEM text of `fetch.client_key`, after the same permission check. */
export async function readClientKey(path: string): Promise<string> {
  const text = await readPrivateFile(path, "client key file (fetch.client_key)");
  if (!/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) {
    throw new PasswordFileError(
      `Cannot use client key file (fetch.client_key) "${path}": no PEM private key in it`,
    );
  }
  return text;
}

/** Reads `path` if only its owner may access it; `what` names the file in errors. */
async function readPrivateFile(path: string, what: string): Promise<string> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.stat(path);
  } catch (err) {
    throw new PasswordFileError(`Cannot read ${what} "${path}": ${errorText(err)}`);
  }
  if (!info.isFile) throw new PasswordFileError(`Cannot read ${what} "${path}": not a file`);
  const fault = namedFileFault(info);
  if (fault !== undefined) throw new PasswordFileError(`Cannot read ${what} "${path}": ${fault}`);
  // mode is null only on Windows, where POSIX permission bits do not exist.
  const mode = info.mode === null ? 0 : info.mode & 0o777;
  if ((mode & 0o077) !== 0) {
    throw new PasswordFileError(
      `Refusing ${what} "${path}": permissions ${mode.toString(8).padStart(4, "0")} ` +
        `are too open (group or others may access it); run: chmod 600 "${path}"`,
    );
  }
  try {
    return await readNamedTextFile(path);
  } catch (err) {
    throw new PasswordFileError(`Cannot read ${what} "${path}": ${errorText(err)}`);
  }
}
