/**
 * The mail of the domains a `user` command changed hands (README "Users"): after `user add` or
 * `user domains --add`, mail waiting for the MX hosts of the user's domains (submitted while no
 * user owned them) is held for the user's ATRN instead, where its MX would soon name us and fail
 * it as a loop (src/queue/_hold.ts); all the user's domains, not only those added, so running
 * the command again moves what an older version left on route mx. After `user domains --remove`,
 * the mail held for the domains taken away is counted: it stays queued for them (until it
 * expires, or a new owner collects it), and the operator is told so.
 */
import { errorText } from "../errors.ts";
import type { QueueAdmin } from "../queue/admin.ts";
import { openToolAdmin } from "./_backend.ts";
import { EXIT_FAILURE, EXIT_OK } from "./_args.ts";
import type { CliIo } from "./io.ts";

/** `owned`: the user's domains after an add (none: no add); `taken`: the domains removed. */
export async function mailOfChangedDomains(
  changed: { readonly owned: readonly string[]; readonly taken: readonly string[] },
  io: CliIo,
): Promise<number> {
  if (changed.owned.length === 0 && changed.taken.length === 0) return EXIT_OK;
  let admin: QueueAdmin | undefined;
  let isHeld = changed.owned.length === 0;
  try {
    admin = await openToolAdmin(io.dataDir, io.storage);
    if (!isHeld) {
      const held = await admin.holdForAtrn(changed.owned);
      if (held > 0) {
        io.stdout(
          `${held} recipient${held === 1 ? "" : "s"} waiting for ${
            held === 1 ? "its domain's" : "their domains'"
          } MX hosts held for ATRN instead\n`,
        );
      }
      isHeld = true;
    }
    if (changed.taken.length > 0) {
      const { messages } = await admin.waiting(changed.taken);
      if (messages > 0) {
        const one = messages === 1;
        io.stdout(
          `${messages} message${one ? "" : "s"} for ${changed.taken.join(", ")} stay${
            one ? "s" : ""
          } queued until ${one ? "it expires" : "they expire"} or a new owner collects ${
            one ? "it" : "them"
          }\n`,
        );
      }
    }
    return EXIT_OK;
  } catch (err) {
    if (!isHeld) {
      io.stderr(
        `error: The domains changed, but the mail waiting for their MX hosts was not held for ` +
          `ATRN: ${errorText(err)}; run the command again\n`,
      );
      return EXIT_FAILURE;
    }
    // Only the count failed: the change is made and nothing waits on it.
    io.stderr(`warning: The mail of the domains taken could not be counted: ${errorText(err)}\n`);
    return EXIT_OK;
  } finally {
    await admin?.close();
  }
}
