/**
 * `join`, `dirname` and `resolve` of POSIX paths, as `node:path` computes them on Linux (tests
 * compare the two on random paths). Ours because `node:path` costs an idle `serve` resident
 * memory: importing it makes Deno load about 35 of its Node.js compatibility modules (URL,
 * Buffer, util, assert, …) that nothing else in serve needs (issue 13).
 */

/** `node:path` posix `join`: the non-empty parts joined with "/", then normalized. */
export function join(...parts: string[]): string {
  const joined = parts.filter((p) => p.length > 0).join("/");
  return joined === "" ? "." : normalize(joined);
}

/** `node:path` posix `dirname`: the path without its last segment (trailing "/" ignored). */
export function dirname(path: string): string {
  if (path.length === 0) return ".";
  const hasRoot = path[0] === "/";
  let end = -1;
  let isInTrailingSlashes = true;
  for (let i = path.length - 1; i >= 1; i--) {
    if (path[i] === "/") {
      if (!isInTrailingSlashes) {
        end = i;
        break;
      }
    } else {
      isInTrailingSlashes = false;
    }
  }
  if (end === -1) return hasRoot ? "/" : ".";
  if (hasRoot && end === 1) return "//";
  return path.slice(0, end);
}

/**
 * `node:path` posix `resolve`: the parts from the right up to the first absolute one (the
 * working directory if none is), normalized, without a trailing "/".
 */
export function resolve(...parts: string[]): string {
  let resolved = "";
  let isAbsolute = false;
  for (let i = parts.length - 1; i >= -1 && !isAbsolute; i--) {
    const part = i >= 0 ? parts[i] as string : Deno.cwd();
    if (part.length === 0) continue;
    resolved = `${part}/${resolved}`;
    isAbsolute = part[0] === "/";
  }
  const normal = segments(resolved, isAbsolute).join("/");
  if (isAbsolute) return `/${normal}`;
  return normal.length > 0 ? normal : ".";
}

/** `node:path` posix `normalize`. */
function normalize(path: string): string {
  const isAbsolute = path[0] === "/";
  const hasTrailingSlash = path[path.length - 1] === "/";
  let normal = segments(path, isAbsolute).join("/");
  if (normal.length === 0) return isAbsolute ? "/" : hasTrailingSlash ? "./" : ".";
  if (hasTrailingSlash) normal += "/";
  return isAbsolute ? `/${normal}` : normal;
}

/** The segments of `path` with "", "." and resolvable ".." removed. */
function segments(path: string, isAbsolute: boolean): string[] {
  const out: string[] = [];
  for (const segment of path.split("/")) {
    if (segment === "" || segment === ".") continue;
    if (segment !== "..") out.push(segment);
    else if (out.length > 0 && out[out.length - 1] !== "..") out.pop();
    else if (!isAbsolute) out.push("..");
  }
  return out;
}
