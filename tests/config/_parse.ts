/**
 * Config text as the config tests parse it: the file /etc/odmr.yaml on host box.local
 * (src/config/parse.ts), and what the loader says when it refuses it.
 */
import { ConfigError } from "../../src/config/load.ts";
import { parseConfig } from "../../src/config/parse.ts";

/** Where the text is said to come from. */
export const CONFIG_BASE = {
  source: "/etc/odmr.yaml",
  baseDir: "/etc",
  systemHostname: () => "box.local",
};

/** The ConfigError's message for `text`, or undefined when it loads. */
export function refusalOf(text: string): string | undefined {
  try {
    parseConfig(text, CONFIG_BASE);
  } catch (err) {
    if (err instanceof ConfigError) return err.message;
    throw err;
  }
  return undefined;
}
