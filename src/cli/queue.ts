/**
 * `queue list|show|delete`: inspect and remove queued mail (README.md). Works beside a
 * running `serve` (WAL); it never removes orphan chunks, which may belong to a message that
 * `serve` is still receiving. Exit codes: 0 ok, 1 runtime failure or unknown id, 2 usage.
 */
import { parseArgs } from "node:util";
import { isQueueId } from "../queue/id.ts";
import type { MessageParams, QueuedMessage, QueueStore } from "../queue/types.ts";
import { openToolQueue } from "./_backend.ts";
import type { CliIo } from "./io.ts";

const EXIT_OK = 0;
const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

/** `queue show` reads at most this many bytes looking for the end of the header block. */
export const MAX_SHOWN_HEADER_BYTES = 64 * 1024;

const USAGE = "Usage: queue list [--domain D] [--json] | queue show ID | " +
  "queue delete ID... | queue delete --domain D [--yes]";

/** Runs `queue SUBCOMMAND …` and returns the exit code. */
export async function queueCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== "list" && sub !== "show" && sub !== "delete") {
    const what = sub === undefined ? "Missing subcommand" : `Unknown subcommand "${sub}"`;
    io.stderr(`error: ${what}: expected list, show or delete\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  const parsed = parseCommand(sub, rest);
  if (!parsed.ok) {
    io.stderr(`error: ${parsed.message}\n${USAGE}\n`);
    return EXIT_USAGE;
  }
  let store: QueueStore;
  try {
    store = openToolQueue(io.dataDir);
  } catch (err) {
    io.stderr(`error: ${errorText(err)}\n`);
    return EXIT_FAILURE;
  }
  try {
    const cmd = parsed.command;
    switch (cmd.kind) {
      case "list":
        return await listMessages(store, cmd, io);
      case "show":
        return await showMessage(store, cmd.id, io);
      case "delete":
        return await deleteMessages(store, cmd, io);
      default: {
        const never: never = cmd;
        return never;
      }
    }
  } catch (err) {
    io.stderr(`error: Cannot read the queue in "${io.dataDir}": ${errorText(err)}\n`);
    return EXIT_FAILURE;
  } finally {
    await store.close();
  }
}

type QueueCommand =
  | { readonly kind: "list"; readonly domain: string | undefined; readonly isJson: boolean }
  | { readonly kind: "show"; readonly id: string }
  | {
    readonly kind: "delete";
    readonly ids: readonly string[];
    readonly domain: string | undefined;
    readonly isConfirmed: boolean;
  };

type Parsed = { ok: true; command: QueueCommand } | { ok: false; message: string };

function parseCommand(sub: "list" | "show" | "delete", args: readonly string[]): Parsed {
  try {
    switch (sub) {
      case "list": {
        const { values, positionals } = parseArgs({
          args: [...args],
          options: { domain: { type: "string" }, json: { type: "boolean" } },
          strict: true,
          allowPositionals: true,
        });
        if (positionals.length > 0) {
          return { ok: false, message: `Unexpected argument "${positionals[0]}"` };
        }
        const domain = values.domain?.toLowerCase();
        if (domain === "") return { ok: false, message: "--domain needs a domain name" };
        return { ok: true, command: { kind: "list", domain, isJson: values.json ?? false } };
      }
      case "show": {
        const { positionals } = parseArgs({
          args: [...args],
          options: {},
          strict: true,
          allowPositionals: true,
        });
        const [id, extra] = positionals;
        if (id === undefined) return { ok: false, message: "queue show needs a message ID" };
        if (extra !== undefined) return { ok: false, message: `Unexpected argument "${extra}"` };
        return { ok: true, command: { kind: "show", id } };
      }
      case "delete": {
        const { values, positionals } = parseArgs({
          args: [...args],
          options: { domain: { type: "string" }, yes: { type: "boolean" } },
          strict: true,
          allowPositionals: true,
        });
        const domain = values.domain?.toLowerCase();
        if (domain === "") return { ok: false, message: "--domain needs a domain name" };
        if (domain !== undefined && positionals.length > 0) {
          return { ok: false, message: "--domain cannot be combined with message IDs" };
        }
        if (domain === undefined && positionals.length === 0) {
          return { ok: false, message: "queue delete needs message IDs or --domain" };
        }
        return {
          ok: true,
          command: { kind: "delete", ids: positionals, domain, isConfirmed: values.yes ?? false },
        };
      }
    }
  } catch (err) {
    // parseArgs names the offending flag ("Unknown option '--foo'").
    return { ok: false, message: errorText(err) };
  }
}

async function listMessages(
  store: QueueStore,
  cmd: { domain: string | undefined; isJson: boolean },
  io: CliIo,
): Promise<number> {
  const messages = await store.list(cmd.domain === undefined ? {} : { domain: cmd.domain });
  if (cmd.isJson) {
    const out = messages.map((m) => ({
      id: m.id,
      received_at: new Date(m.receivedAt).toISOString(),
      from: m.mailFrom,
      size: m.size,
      recipients: m.recipients.map((r) => ({
        address: r.address,
        domain: r.domain,
        status: r.status,
      })),
    }));
    io.stdout(JSON.stringify(out, null, 2) + "\n");
    return EXIT_OK;
  }
  if (messages.length === 0) {
    io.stdout(cmd.domain === undefined ? "Queue is empty\n" : `No mail for "${cmd.domain}"\n`);
    return EXIT_OK;
  }
  const rows = messages.map((m) => [
    m.id,
    isoSeconds(m.receivedAt),
    String(m.size),
    reversePath(m.mailFrom),
    m.recipients.map((r) => `${safe(r.address)} (${r.status})`).join(", "),
  ]);
  io.stdout(formatTable(["ID", "RECEIVED", "SIZE", "FROM", "RECIPIENTS"], rows));
  const total = messages.reduce((n, m) => n + m.size, 0);
  io.stdout(`${messages.length} message${messages.length === 1 ? "" : "s"}, ${total} bytes\n`);
  return EXIT_OK;
}

async function showMessage(store: QueueStore, id: string, io: CliIo): Promise<number> {
  const message = isQueueId(id) ? await store.get(id) : undefined;
  if (message === undefined) {
    io.stderr(`error: Message "${safe(id)}" not found\n`);
    return EXIT_FAILURE;
  }
  const lines = [
    `Message:    ${message.id}`,
    `Received:   ${new Date(message.receivedAt).toISOString()}`,
    `From:       ${reversePath(message.mailFrom)}`,
    `Size:       ${message.size} bytes`,
  ];
  const params = formatParams(message.params);
  if (params !== "") lines.push(`Parameters: ${params}`);
  lines.push("Recipients:");
  for (const r of message.recipients) {
    let line = `  ${safe(r.address)}  ${r.status}  attempts=${r.attempts}`;
    if (r.lastReply !== undefined) line += `  last reply: ${safe(r.lastReply)}`;
    lines.push(line);
  }
  lines.push("Headers:");
  io.stdout(lines.join("\n") + "\n");
  io.stdout(await readHeaders(store, message) + "\n");
  return EXIT_OK;
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
        `error: Refusing to delete every recipient in "${cmd.domain}" without a terminal to ` +
          "confirm: add --yes; nothing deleted\n",
      );
      return EXIT_USAGE;
    }
    const question = `Delete the queued mail of every recipient in "${cmd.domain}"?`;
    if (!(await isAllowed(question, cmd.isConfirmed, io))) return EXIT_FAILURE;
    const count = await store.deleteDomain(cmd.domain);
    io.stdout(`Removed recipients in "${cmd.domain}" from ${count} message(s)\n`);
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
    const question = `Delete ${found.length} message${found.length === 1 ? "" : "s"}?`;
    if (!(await isAllowed(question, cmd.isConfirmed, io))) return EXIT_FAILURE;
    const count = await store.delete(found);
    io.stdout(`Deleted ${count} message${count === 1 ? "" : "s"}\n`);
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

/** The header block (up to the first empty line), bounded by MAX_SHOWN_HEADER_BYTES. */
async function readHeaders(store: QueueStore, message: QueuedMessage): Promise<string> {
  const kept = new Uint8Array(Math.min(MAX_SHOWN_HEADER_BYTES, message.size));
  let fill = 0;
  let end = -1;
  for await (const chunk of store.readBody(message.id)) {
    const n = Math.min(chunk.length, kept.length - fill);
    kept.set(chunk.subarray(0, n), fill);
    const from = Math.max(0, fill - 3);
    fill += n;
    end = findBlankLine(kept.subarray(0, fill), from);
    if (end >= 0 || fill === kept.length) break;
  }
  const isTruncated = end < 0 && fill < message.size;
  let stop = end >= 0 ? end : fill;
  if (end > 0 && kept[end - 1] === 0x0d) stop = end - 1; // the CR of the last header's CRLF
  const text = new TextDecoder().decode(kept.subarray(0, stop));
  const shown = text.split(/\r?\n/).map((line) => "  " + safe(line)).join("\n");
  return isTruncated ? `${shown}\n  [… headers longer than ${kept.length} bytes cut]` : shown;
}

/** Offset of the line ending that starts an empty line (CRLF CRLF or LF LF), or -1. */
function findBlankLine(bytes: Uint8Array, from: number): number {
  for (let i = from; i < bytes.length - 1; i++) {
    if (bytes[i] !== 0x0a) continue;
    if (bytes[i + 1] === 0x0a) return i;
    if (bytes[i + 1] === 0x0d && bytes[i + 2] === 0x0a) return i;
  }
  return -1;
}

function formatTable(head: readonly string[], rows: readonly string[][]): string {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: readonly string[]) =>
    cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join("  ")
      .trimEnd() + "\n";
  return line(head) + rows.map(line).join("");
}

function formatParams(p: MessageParams): string {
  const parts: string[] = [];
  if (p.body !== undefined) parts.push(`BODY=${p.body}`);
  if (p.smtputf8 === true) parts.push("SMTPUTF8");
  if (p.ret !== undefined) parts.push(`RET=${p.ret}`);
  if (p.envid !== undefined) parts.push(`ENVID=${safe(p.envid)}`);
  return parts.join(" ");
}

function reversePath(mailFrom: string): string {
  return `<${safe(mailFrom)}>`;
}

function isoSeconds(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, "Z");
}

/** Replaces control characters so stored text cannot drive the operator's terminal. */
function safe(text: string): string {
  // deno-lint-ignore no-control-regex -- control characters are exactly what must go
  return text.replace(/[\x00-\x08\x0a-\x1f\x7f]/g, "?");
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
