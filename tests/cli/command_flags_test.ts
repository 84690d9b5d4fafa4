/**
 * serve's and fetch's flags (src/cli/_command_flags.ts), parsed without node:util (#13): the
 * flags users rely on, and every other argument refused with a message naming it.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { parseBooleanFlags } from "../../src/cli/_command_flags.ts";

const FLAGS = [{ long: "once" }, { long: "verbose", short: "v" }, { long: "quiet", short: "q" }];

Deno.test("(#13) long and short boolean flags, grouped short flags, repeats", () => {
  assertEquals(parseBooleanFlags([], FLAGS), { ok: true, values: {} });
  assertEquals(parseBooleanFlags(["--once", "-v"], FLAGS), {
    ok: true,
    values: { once: true, verbose: true },
  });
  assertEquals(parseBooleanFlags(["-vq"], FLAGS), {
    ok: true,
    values: { verbose: true, quiet: true },
  });
  assertEquals(parseBooleanFlags(["--quiet", "--quiet", "-q"], FLAGS), {
    ok: true,
    values: { quiet: true },
  });
});

Deno.test("(#13) unknown flags, values given to flags and positional arguments are refused by name", () => {
  const refused = (args: string[]) => {
    const r = parseBooleanFlags(args, FLAGS);
    return r.ok ? "accepted" : r.message;
  };
  assertEquals(refused(["--onc"]), `Unknown option "--onc"`);
  assertEquals(refused(["--once", "--nope=1"]), `Unknown option "--nope"`);
  assertEquals(refused(["-x"]), `Unknown option "-x"`);
  assertEquals(refused(["-vx"]), `Unknown option "-x"`);
  assertEquals(refused(["-o"]), `Unknown option "-o"`); // --once has no short form
  assertEquals(refused(["--once=yes"]), `Option "--once" does not take a value`);
  assertEquals(refused(["extra"]), `Unexpected argument "extra"`);
  assertEquals(refused(["-"]), `Unexpected argument "-"`);
  // `--` ends the flags (as node:util's parseArgs, which serve and fetch used before): alone
  // it is accepted, and what follows it is a positional argument, flag-like or not.
  assertEquals(refused(["--"]), "accepted");
  assertEquals(refused(["-v", "--"]), "accepted");
  assertEquals(refused(["--", "--once"]), `Unexpected argument "--once"`);
  assertEquals(refused(["--", "x"]), `Unexpected argument "x"`);
  assertEquals(refused(["--nope", "--"]), `Unknown option "--nope"`);
  // Only the flags asked for: serve takes no --once.
  assertEquals(parseBooleanFlags(["--once"], FLAGS.slice(1)), {
    ok: false,
    message: `Unknown option "--once"`,
  });
});
