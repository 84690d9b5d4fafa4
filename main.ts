/** odmr-relay: argv → one command → exit code. Everything else lives in src/cli/. */
import { runCli } from "./src/cli/main.ts";

if (import.meta.main) {
  Deno.exit(await runCli(Deno.args));
}
