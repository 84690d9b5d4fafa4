/**
 * External peers for e2e tests (swaks, openssl, fetchmail, smtp-source): a test that needs a
 * missing tool is skipped with a printed reason, never silently; under CI (`CI=true`) it
 * fails instead, so a green CI run proves the peers really ran.
 */

/** Directories searched beside $PATH: Postfix tools live in /usr/sbin. */
const EXTRA_DIRS = ["/usr/sbin", "/sbin", "/usr/local/sbin"];

const found = new Map<string, string | undefined>();

/** The full path of `name`, or undefined when it is not installed. */
export async function findTool(name: string): Promise<string | undefined> {
  if (found.has(name)) return found.get(name);
  const dirs = [...(Deno.env.get("PATH") ?? "").split(":").filter((d) => d !== ""), ...EXTRA_DIRS];
  let hit: string | undefined;
  for (const dir of dirs) {
    try {
      const info = await Deno.stat(`${dir}/${name}`);
      if (info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0) {
        hit = `${dir}/${name}`;
        break;
      }
    } catch {
      // Not in this directory.
    }
  }
  found.set(name, hit);
  return hit;
}

/** True when `name` is installed. */
export async function hasTool(name: string): Promise<boolean> {
  return (await findTool(name)) !== undefined;
}

/** True when running under CI, where missing tools are failures. */
export function isCi(): boolean {
  return Deno.env.get("CI") === "true";
}

/**
 * Whether a test needing `tools` must be ignored: prints `skip: <test>: <tool> not installed`
 * and returns true outside CI; returns false under CI (the test then fails in `requireTools`).
 */
export async function skipUnless(testName: string, ...tools: string[]): Promise<boolean> {
  const missing = await missingTools(tools);
  if (missing.length === 0 || isCi()) return false;
  // deno-lint-ignore no-console -- the printed reason is the point of a skip (docs/architecture.md "Conventions")
  console.log(`skip: ${testName}: ${missing.join(", ")} not installed`);
  return true;
}

/**
 * Whether a test may bind port 25 on a loopback address such as 127.0.0.2 (root only, like a
 * real MX): true as root; otherwise prints `skip: <test>: port 25 on <where> needs root` and
 * returns false, or throws under CI (which runs as root and forbids skipping).
 */
export function canBindPort25(testName: string, where: string): boolean {
  if (Deno.uid() === 0) return true;
  if (isCi()) throw new Error(`port 25 on ${where} needs root, and CI=true forbids skipping`);
  // deno-lint-ignore no-console -- the printed reason is the point of a skip (docs/architecture.md "Conventions")
  console.log(`skip: ${testName}: port 25 on ${where} needs root`);
  return false;
}

/** Throws when a tool is missing (first line of a test body that `skipUnless` let run). */
export async function requireTools(...tools: string[]): Promise<void> {
  const missing = await missingTools(tools);
  if (missing.length > 0) {
    throw new Error(
      `${missing.join(", ")} not installed, and CI=true forbids skipping: install it (see .ci/run)`,
    );
  }
}

/** Registers a test that needs external tools, following the skip/CI rule above. */
export async function toolTest(
  name: string,
  tools: readonly string[],
  fn: (t: Deno.TestContext) => Promise<void>,
): Promise<void> {
  const ignore = await skipUnless(name, ...tools);
  Deno.test({
    name,
    ignore,
    fn: async (t) => {
      await requireTools(...tools);
      await fn(t);
    },
  });
}

async function missingTools(tools: readonly string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const tool of tools) if (!(await hasTool(tool))) missing.push(tool);
  return missing;
}
