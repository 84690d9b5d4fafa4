/**
 * vendor/yaml/bundle.js (what the config loader runs) is `deno bundle` of vendor/yaml/dist/ (the
 * published ES modules, vendor/yaml/README.md), byte for byte: made again here and compared, so
 * a change to either without the other fails.
 */
import { equal, ok } from "node:assert/strict";
import { REPO_ROOT } from "../_helpers/server_process.ts";

Deno.test("vendor/yaml/bundle.js is deno bundle of vendor/yaml/dist/index.js, unedited", async () => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-yaml-bundle-" });
  try {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["bundle", "vendor/yaml/dist/index.js", "-o", `${dir}/bundle.js`],
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    ok(out.success, new TextDecoder().decode(out.stderr));
    const made = await Deno.readTextFile(`${dir}/bundle.js`);
    const kept = await Deno.readTextFile(`${REPO_ROOT}vendor/yaml/bundle.js`);
    ok(made.length > 100_000, `${made.length} bytes`);
    equal(kept, made);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
