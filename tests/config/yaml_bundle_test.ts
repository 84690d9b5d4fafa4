/**
 * vendor/yaml/bundle.js (what the config loader runs) is `deno bundle` of vendor/yaml/dist/ (the
 * published ES modules, vendor/yaml/README.md), byte for byte: made again here and compared, so
 * a change to either without the other fails. The bundle was made with Deno 2.9.6 (its esbuild,
 * fetched from the npm registry on first use): another Deno may print other bytes, so there the
 * test is skipped with a printed reason (CI installs 2.9.6, so it runs there), and so it is
 * outside CI when the npm registry cannot be reached.
 */
import { equal, ok } from "node:assert/strict";
import { REPO_ROOT } from "../_helpers/server_process.ts";
import { isCi } from "../_helpers/tools.ts";

/** The Deno whose `deno bundle` made vendor/yaml/bundle.js. */
const BUNDLED_WITH = "2.9.6";

Deno.test("vendor/yaml/bundle.js is deno bundle of vendor/yaml/dist/index.js, unedited", async () => {
  if (Deno.version.deno !== BUNDLED_WITH) {
    const why = `bundle made with Deno ${BUNDLED_WITH}, this is ${Deno.version.deno}`;
    // deno-lint-ignore no-console -- the printed reason is the point of a skip (docs/architecture.md "Conventions")
    console.log(`SKIP vendor/yaml bundle comparison: ${why}`);
    return;
  }
  const dir = await Deno.makeTempDir({ prefix: "odmr-yaml-bundle-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "vendor/yaml/dist/index.js", "-o", `${dir}/bundle.js`],
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    if (!out.success && stderr.includes("error sending request") && !isCi()) {
      // deno-lint-ignore no-console -- the printed reason is the point of a skip (docs/architecture.md "Conventions")
      console.log(`SKIP vendor/yaml bundle comparison: deno bundle cannot fetch esbuild from npm`);
      return;
    }
    ok(out.success, stderr);
    const made = await Deno.readTextFile(`${dir}/bundle.js`);
    const kept = await Deno.readTextFile(`${REPO_ROOT}vendor/yaml/bundle.js`);
    ok(made.length > 100_000, `${made.length} bytes`);
    equal(kept, made);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
