/**
 * A config file that expands aliases without bound ("billion laughs": each anchor a list of the
 * one before, nine times over) is refused as a config error naming the file, exit 2 (CONTRACT
 * "Exit codes"), like any other invalid YAML; a few aliases, as people write to share a listen
 * list, still load. The `yaml` package stops the expansion with its own ReferenceError.
 */
import { deepStrictEqual as assertEquals, match } from "node:assert/strict";
import { refusalOf } from "./_parse.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { CONFIG_BASE } from "./_parse.ts";
import { runMain } from "../_helpers/server_process.ts";

/** Nine levels of nine aliases each: 9^9 strings once expanded. */
function laughs(): string {
  let text = `a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n`;
  for (let i = 1; i < 9; i++) {
    text += `a${i}: &a${i} [${Array(9).fill(`*a${i - 1}`).join(",")}]\n`;
  }
  return text;
}

Deno.test("config: an alias bomb, or an alias to no anchor, is a config error naming the file, not an uncaught exception", () => {
  match(
    refusalOf(laughs()) ?? "loaded",
    /^Cannot load config "\/etc\/odmr\.yaml": is not valid YAML: too many aliases/,
  );
  // An alias to no anchor fails in the same place (after parsing) and is refused the same way.
  match(
    refusalOf("hostname: *nowhere\n") ?? "loaded",
    /^Cannot load config "\/etc\/odmr\.yaml": is not valid YAML: Unresolved alias .*: nowhere$/,
  );
});

Deno.test("config: a few aliases still load", () => {
  const config = parseConfig(
    'smtp:\n  listen: &l ["127.0.0.1:0"]\nsubmission:\n  listen: *l\n',
    CONFIG_BASE,
  );
  // Port 0: any free port for each (one address and port twice would be refused).
  assertEquals(config.smtp.listen, [{ host: "127.0.0.1", port: 0, tls: "none" }]);
  assertEquals(config.submission?.listen, config.smtp.listen);
});

Deno.test("check-config with an alias bomb: one error line, exit 2", async () => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-yaml-alias-" });
  try {
    await Deno.writeTextFile(`${dir}/bomb.yaml`, laughs());
    const r = await runMain(["check-config", "--config", `${dir}/bomb.yaml`]);
    assertEquals(r.code, 2, r.stderr);
    const lines = r.stderr.trimEnd().split("\n");
    assertEquals(lines.length, 1, r.stderr);
    match(lines[0] ?? "", /^error: Cannot load config ".*bomb\.yaml": is not valid YAML: too many/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
