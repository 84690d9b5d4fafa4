/**
 * Test certificates made with the `openssl` CLI: a throw-away CA and a server certificate
 * for `localhost` / 127.0.0.1 signed by it, so clients can verify with `ca`.
 * `makeTestCa()` returns undefined when openssl is missing; the caller skips with a reason.
 */

/** Paths of a test CA and a server certificate it signed (PEM files in `dir`). */
export interface TestCa {
  readonly dir: string;
  readonly caCertPath: string;
  readonly certPath: string;
  readonly keyPath: string;
  /** PEM text of the CA certificate (for `ca:` options). */
  readonly caCertPem: string;
  /** Removes `dir`. */
  cleanup(): Promise<void>;
}

/** True when the openssl CLI can be run. */
export function hasOpenssl(): boolean {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await new Deno.Command("openssl", { args, cwd, stdout: "piped", stderr: "piped" })
    .output();
  if (!out.success) {
    throw new Error(`openssl ${args[0]} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
}

/** Creates a CA and a `localhost` server certificate in a new temp dir; undefined without openssl. */
export async function makeTestCa(): Promise<TestCa | undefined> {
  if (!hasOpenssl()) return undefined;
  const dir = await Deno.makeTempDir({ prefix: "odmr-certs-" });
  try {
    const days = "2";
    await openssl([
      "req",
      "-x509",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "ca.key",
      "-out",
      "ca.pem",
      "-subj",
      "/CN=odmr-relay test CA",
      "-days",
      days,
      "-addext",
      "basicConstraints=critical,CA:TRUE",
      "-addext",
      "keyUsage=critical,keyCertSign,cRLSign",
    ], dir);
    await openssl([
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-keyout",
      "server.key",
      "-out",
      "server.csr",
      "-subj",
      "/CN=localhost",
    ], dir);
    await Deno.writeTextFile(
      `${dir}/ext.cnf`,
      "subjectAltName=DNS:localhost,IP:127.0.0.1\n" +
        "extendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n",
    );
    await openssl([
      "x509",
      "-req",
      "-in",
      "server.csr",
      "-CA",
      "ca.pem",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-out",
      "server.pem",
      "-days",
      days,
      "-extfile",
      "ext.cnf",
    ], dir);
  } catch (err) {
    await Deno.remove(dir, { recursive: true });
    throw err;
  }
  return {
    dir,
    caCertPath: `${dir}/ca.pem`,
    certPath: `${dir}/server.pem`,
    keyPath: `${dir}/server.key`,
    caCertPem: await Deno.readTextFile(`${dir}/ca.pem`),
    cleanup: () => Deno.remove(dir, { recursive: true }),
  };
}

/**
 * `makeTestCa()` for a test that cannot run without it: undefined after printing
 * `skip: <testName>: openssl not installed`, but a failure under CI (CI=true forbids skipping;
 * tests/_helpers/tools.ts).
 */
export async function testCaOrSkip(testName: string): Promise<TestCa | undefined> {
  const ca = await makeTestCa();
  if (ca !== undefined) return ca;
  if (Deno.env.get("CI") === "true") {
    throw new Error(`${testName}: openssl not installed, and CI=true forbids skipping`);
  }
  // deno-lint-ignore no-console -- the printed reason is the point of a skip (docs/architecture.md "Conventions")
  console.log(`skip: ${testName}: openssl not installed`);
  return undefined;
}

/**
 * Runs `fn` with a new test CA, removed after. For tests that toolTest lets run only where
 * openssl is (a missing CA fails them).
 */
export async function withTestCa<T>(fn: (ca: TestCa) => Promise<T>): Promise<T> {
  const ca = await makeTestCa();
  if (ca === undefined) throw new Error("openssl did not make the test CA");
  try {
    return await fn(ca);
  } finally {
    await ca.cleanup();
  }
}
