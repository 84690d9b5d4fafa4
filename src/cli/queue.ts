/**
 * `queue list|show|delete|requeue|summary`: inspect, repair and remove queued mail
 * (README.md). Works beside a running `serve` (WAL); it never removes orphan chunks, which
 * may belong to a message that `serve` is still receiving. Exit codes: 0 ok, 1 runtime failure
 * or unknown id, 2 usage (and a bulk delete without a terminal and without `--yes`).
 */
import { isQueueId } from "../queue/id.ts";
import type { QueueAdmin } from "../queue/admin.ts";
import type { QueuedMessage, QueueStore } from "../queue/types.ts";
import { openToolAdmin, openToolQueue, storageWhere } from "./_backend.ts";
import type { CliIo } from "./io.ts";
import { EXIT_FAILURE, EXIT_OK, EXIT_USAGE, usageError } from "./_args.ts";
import { type ListFilter, parseQueueCommand, QUEUE_USAGE } from "./_queue_args.ts";
import { messageJson, showMessage } from "./_queue_show.ts";
import { renderSummary } from "./_queue_summary.ts";
import { formatTable, isoSeconds, jsonText, plural, safe } from "./_text.ts";
import { errorText } from "../errors.ts";

export { MAX_SHOWN_HEADER_BYTES } from "./_queue_show.ts";

/** Test hooks. */
export interface QueueCommandOptions {
  /** Clock in milliseconds since the epoch (`summary`, `--older-than`). */
  readonly now?: () => number;
}

/** Runs `queue SUBCOMMAND …` and returns the exit code. */
export async function queueCommand(
  argv: readonly string[],
  io: CliIo,
  opts: QueueCommandOptions = {},
): Promise<number> {
  if (argv[0] === "migrate") {
    // import(): the migration names both backends; postgres.js loads only for it.
    return await (await import("./_queue_migrate.ts")).migrateCommand(argv.slice(1), io);
  }
  const parsed = parseQueueCommand(argv);
  if (!parsed.ok) return usageError(io, parsed.message, QUEUE_USAGE);
  const now = opts.now ?? Date.now;
  let store: QueueStore;
  let admin: QueueAdmin;
  const kind = parsed.command.kind;
  const access = { readOnly: kind === "list" || kind === "show" || kind === "summary" };
  try {
    store = await openToolQueue(io.dataDir, io.storage, access);
  } catch (err) {
    io.stderr(`error: ${errorText(err)}\n`);
    return EXIT_FAILURE;
  }
  try {
    admin = await openToolAdmin(io.dataDir, io.storage, access);
  } catch (err) {
    await store.close();
    io.stderr(`error: ${errorText(err)}\n`);
    return EXIT_FAILURE;
  }
  try {
    const cmd = parsed.command;
    switch (cmd.kind) {
      case "list":
        return await listMessages(store, cmd.filter, cmd.isJson, now(), io);
      case "show": {
        const message = isQueueId(cmd.id) ? await store.get(cmd.id) : undefined;
        if (message === undefined) {
          io.stderr(`error: Message "${safe(cmd.id)}" not found\n`);
          return EXIT_FAILURE;
        }
        await showMessage(store, message, cmd.format, io);
        return EXIT_OK;
      }
      case "delete":
        return await deleteMessages(store, cmd, io);
      case "requeue":
        return await requeue(admin, cmd.target, io);
      case "summary":
        io.stdout(renderSummary(await admin.ages(now()), cmd.isJson));
        return EXIT_OK;
      default: {
        const never: never = cmd;
        return never;
      }
    }
  } catch (err) {
    // `queue show ID --body | head`: the reader has what it wanted.
    if (err instanceof Deno.errors.BrokenPipe) return EXIT_OK;
    const where = await storageWhere(io.dataDir, io.storage);
    io.stderr(`error: Cannot use the queue ${where}: ${errorText(err)}\n`);
    return EXIT_FAILURE;
  } finally {
    await admin.close();
    await store.close();
  }
}

async function listMessages(
  store: QueueStore,
  filter: ListFilter,
  isJson: boolean,
  nowMs: number,
  io: CliIo,
): Promise<number> {
  const all = await store.list(filter.domain === undefined ? {} : { domain: filter.domain });
  const messages = applyFilter(all, filter, nowMs);
  if (isJson) {
    io.stdout(jsonText(messages.map(messageJson), 2) + "\n");
    return EXIT_OK;
  }
  if (messages.length === 0) {
    const isFiltered = filter.statuses !== undefined || filter.olderThanMs !== undefined;
    io.stdout(
      filter.domain !== undefined
        ? `No mail for "${safe(filter.domain)}"${isFiltered ? " matches" : ""}\n`
        : isFiltered
        ? "No mail matches\n"
        : "Queue is empty\n",
    );
    return EXIT_OK;
  }
  const rows = messages.map((m) => [
    m.id,
    isoSeconds(m.receivedAt),
    String(m.size),
    `<${safe(m.mailFrom)}>`,
    m.recipients.map((r) => `${safe(r.address)} (${r.status})`).join(", "),
  ]);
  io.stdout(formatTable(["ID", "RECEIVED", "SIZE", "FROM", "RECIPIENTS"], rows));
  const total = messages.reduce((n, m) => n + m.size, 0);
  io.stdout(`${plural(messages.length, "message")}, ${total} bytes\n`);
  return EXIT_OK;
}

/**
 * `--status` keeps only matching recipients (a message left with none disappears, as with
 * `--domain`); `--older-than` keeps messages received at least that long ago.
 */
function applyFilter(
  messages: readonly QueuedMessage[],
  filter: ListFilter,
  nowMs: number,
): QueuedMessage[] {
  const out: QueuedMessage[] = [];
  for (const m of messages) {
    if (filter.olderThanMs !== undefined && nowMs - m.receivedAt < filter.olderThanMs) continue;
    const statuses = filter.statuses;
    if (statuses === undefined) {
      out.push(m);
      continue;
    }
    const recipients = m.recipients.filter((r) => statuses.includes(r.status));
    if (recipients.length > 0) out.push({ ...m, recipients });
  }
  return out;
}

async function deleteMessages(
  store: QueueStore,
  cmd: { ids: readonly string[]; domain: string | undefined; isConfirmed: boolean },
  io: CliIo,
): Promise<number> {
  if (cmd.domain !== undefined) {
    if (!cmd.isConfirmed && !io.isTty) {
      // A script or `ssh host cmd` has nobody to ask: a bulk delete needs --yes (#11).
      io.stderr(
        `error: Refusing to delete every recipient in "${safe(cmd.domain)}" without a ` +
          "terminal to confirm: add --yes; nothing deleted\n",
      );
      return EXIT_USAGE;
    }
    const question = `Delete the queued mail of every recipient in "${safe(cmd.domain)}"?`;
    if (!(await isAllowed(question, cmd.isConfirmed, io))) return EXIT_FAILURE;
    const count = await store.deleteDomain(cmd.domain);
    io.stdout(`Removed recipients in "${safe(cmd.domain)}" from ${count} message(s)\n`);
    return EXIT_OK;
  }
  const found: string[] = [];
  let isAnyMissing = false;
  for (const id of new Set(cmd.ids)) {
    if (isQueueId(id) && (await store.get(id)) !== undefined) {
      found.push(id);
    } else {
      io.stderr(`error: Message "${safe(id)}" not found\n`);
      isAnyMissing = true;
    }
  }
  if (found.length > 0) {
    const question = `Delete ${plural(found.length, "message")}?`;
    if (!(await isAllowed(question, cmd.isConfirmed, io))) return EXIT_FAILURE;
    const count = await store.delete(found);
    io.stdout(`Deleted ${plural(count, "message")}\n`);
  }
  return isAnyMissing ? EXIT_FAILURE : EXIT_OK;
}

/**
 * Asks y/N on a terminal unless `--yes`. Without a terminal it proceeds: only deletes by
 * explicit ID get here that way (a bulk delete without a terminal needs `--yes`).
 */
async function isAllowed(question: string, isConfirmed: boolean, io: CliIo): Promise<boolean> {
  if (isConfirmed || !io.isTty) return true;
  io.stderr(`${question} [y/N] `);
  const answer = (await io.readStdinLine())?.trim().toLowerCase();
  if (answer === "y" || answer === "yes") return true;
  io.stderr("Aborted: nothing deleted\n");
  return false;
}

/** Failed recipients become queued again; unknown ids are errors (exit 1), like `delete`. */
async function requeue(
  admin: QueueAdmin,
  target:
    | { kind: "messages"; ids: readonly string[] }
    | { kind: "domain"; domain: string }
    | { kind: "all" },
  io: CliIo,
): Promise<number> {
  const invalid = target.kind === "messages" ? target.ids.filter((id) => !isQueueId(id)) : [];
  const selection = target.kind === "messages"
    ? { kind: "messages" as const, ids: target.ids.filter(isQueueId) }
    : target;
  const result = await admin.requeue(selection);
  for (const id of [...new Set(invalid), ...result.missingIds]) {
    io.stderr(`error: Message "${safe(id)}" not found\n`);
  }
  const where = target.kind === "domain" ? ` in "${safe(target.domain)}"` : "";
  io.stdout(
    `Requeued ${plural(result.recipients, "failed recipient")}${where} ` +
      `(${plural(result.messages, "message")})\n`,
  );
  if (result.expiredSkipped > 0) {
    io.stdout(
      `Not requeued: ${plural(result.expiredSkipped, "expired recipient")} (older than ` +
        "max_age: would expire again at once)\n",
    );
  }
  return invalid.length + result.missingIds.length > 0 ? EXIT_FAILURE : EXIT_OK;
}
