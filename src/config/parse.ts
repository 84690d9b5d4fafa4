/**
 * `parseConfig`: YAML text to a Config in one synchronous call (tests, tools). `loadConfig`
 * (load.ts) does the same but loads the `yaml` package only for files the plain reader
 * (`_yaml_lite.ts`) leaves to it.
 */
import type { Config } from "./types.ts";
import { configFromValue } from "./load.ts";
import { parseSimpleYaml } from "./_yaml_lite.ts";
import { parseYamlText } from "./_yaml_full.ts";

/** Validates YAML text into a Config. Pure apart from `systemHostname`. */
export function parseConfig(
  text: string,
  opts: { source: string | undefined; baseDir: string; systemHostname: () => string },
): Config {
  const lite = parseSimpleYaml(text);
  return configFromValue(lite !== undefined ? lite.value : parseYamlText(text, opts.source), opts);
}
