/**
 * `queue show ID [--json] [--body]` and the JSON shape of a message shared with `queue list
 * --json` (README.md). Text and JSON show the header block at most; `--body` streams the
 * stored message to stdout byte for byte, a stored chunk at a time (never whole in memory);
 * both flags give the JSON object with the message in `body_base64`, streamed the same way.
 */
import type { MessageParams, QueuedMessage, QueuedRecipient, QueueStore } from "../queue/types.ts";
import type { CliIo } from "./io.ts";
import { jsonText, safe } from "./_text.ts";
import { encodeBase64 } from "../wire/base64.ts";

/** `queue show` reads at most this many bytes looking for the end of the header block. */
export const MAX_SHOWN_HEADER_BYTES = 64 * 1024;

/** A message as `queue list --json` prints it (README.md "The queue"). */
export function messageJson(m: QueuedMessage): Record<string, unknown> {
  return {
    id: m.id,
    received_at: new Date(m.receivedAt).toISOString(),
    from: m.mailFrom,
    size: m.size,
    recipients: m.recipients.map((r) => ({
      address: r.address,
      domain: r.domain,
      status: r.status,
      ...routeJson(r),
    })),
  };
}

/**
 * `route` ("atrn": collected with ATRN; "mx": delivered to the domain's MX) and, for a waiting
 * mx recipient, `next_attempt` (ISO time of the next delivery attempt).
 */
function routeJson(r: QueuedRecipient): Record<string, unknown> {
  return {
    route: r.route,
    ...(r.route === "mx" && r.nextAttemptAt !== undefined &&
        (r.status === "queued" || r.status === "delivering")
      ? { next_attempt: new Date(r.nextAttemptAt).toISOString() }
      : {}),
  };
}

/** `queue show --json`: the list shape, each recipient with `attempts` and `last_reply`. */
export function messageDetailJson(m: QueuedMessage): Record<string, unknown> {
  return {
    ...messageJson(m),
    params: paramsJson(m.params),
    recipients: m.recipients.map((r) => ({
      address: r.address,
      domain: r.domain,
      status: r.status,
      ...routeJson(r),
      attempts: r.attempts,
      last_reply: r.lastReply ?? null,
    })),
  };
}

/** Prints one message in `format`; a failed write (stdout closed) throws. */
export async function showMessage(
  store: QueueStore,
  message: QueuedMessage,
  format: "text" | "json" | "body" | "json+body",
  io: CliIo,
): Promise<void> {
  switch (format) {
    case "json":
      io.stdout(jsonText(messageDetailJson(message), 2) + "\n");
      return;
    case "json+body":
      await showJsonWithBody(store, message, io);
      return;
    case "body":
      for await (const chunk of store.readBody(message.id)) await io.writeStdout(chunk);
      return;
    case "text":
      io.stdout(describeMessage(message) + "\n");
      io.stdout(await readHeaders(store, message) + "\n");
      return;
    default: {
      const never: never = format;
      return never;
    }
  }
}

/**
 * The `--json` object with `"body_base64"` last: the stored message, base64 (RFC 4648 §4; a
 * message need not be UTF-8), written a stored chunk at a time. The 0-2 bytes of a chunk past
 * its last whole 3-byte group wait for the next chunk, so the text is one base64 string.
 */
async function showJsonWithBody(
  store: QueueStore,
  message: QueuedMessage,
  io: CliIo,
): Promise<void> {
  const head = jsonText(messageDetailJson(message), 2);
  io.stdout(head.slice(0, head.lastIndexOf("}")).trimEnd() + ',\n  "body_base64": "');
  let carry = new Uint8Array(0);
  for await (const chunk of store.readBody(message.id)) {
    const bytes = carry.length === 0 ? chunk : concat(carry, chunk);
    const whole = bytes.length - (bytes.length % 3);
    io.stdout(encodeBase64(bytes.subarray(0, whole)));
    carry = bytes.slice(whole);
  }
  io.stdout(encodeBase64(carry) + '"\n}\n');
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function describeMessage(message: QueuedMessage): string {
  const lines = [
    `Message:    ${message.id}`,
    `Received:   ${new Date(message.receivedAt).toISOString()}`,
    `From:       <${safe(message.mailFrom)}>`,
    `Size:       ${message.size} bytes`,
  ];
  const params = formatParams(message.params);
  if (params !== "") lines.push(`Parameters: ${params}`);
  lines.push("Recipients:");
  for (const r of message.recipients) {
    let line = `  ${safe(r.address)}  ${r.status}  attempts=${r.attempts}`;
    if (r.route === "mx") {
      line += "  route=mx";
      if (r.nextAttemptAt !== undefined) {
        line += `  next attempt: ${new Date(r.nextAttemptAt).toISOString()}`;
      }
    }
    if (r.lastReply !== undefined) line += `  last reply: ${safe(r.lastReply)}`;
    lines.push(line);
  }
  lines.push("Headers:");
  return lines.join("\n");
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

function paramsJson(p: MessageParams): Record<string, unknown> {
  return {
    ...(p.body === undefined ? {} : { body: p.body }),
    ...(p.smtputf8 === true ? { smtputf8: true } : {}),
    ...(p.ret === undefined ? {} : { ret: p.ret }),
    ...(p.envid === undefined ? {} : { envid: p.envid }),
  };
}

function formatParams(p: MessageParams): string {
  const parts: string[] = [];
  if (p.body !== undefined) parts.push(`BODY=${p.body}`);
  if (p.smtputf8 === true) parts.push("SMTPUTF8");
  if (p.ret !== undefined) parts.push(`RET=${p.ret}`);
  if (p.envid !== undefined) parts.push(`ENVID=${safe(p.envid)}`);
  return parts.join(" ");
}
