/**
 * Delivers one message to the recipients of one domain at that domain's MX hosts (RFC 5321
 * §5.1): hosts in MX order, each of their addresses in turn, until one greets and says EHLO;
 * then the same SMTP sender as the ODMR drain sends it. A host that cannot be reached, greets
 * with other than 220 or refuses EHLO is skipped. Every recipient comes back settled:
 * delivered, failed (5xx, null MX, no such domain) or deferred (everything else).
 * STARTTLS whenever offered (`opportunistic`), or no delivery without it (`required`; then
 * a host without it is skipped with 4.7.10). Certificates are not verified: MX hosts rarely
 * present one for the name we looked up, and without DANE/MTA-STS nothing says which to expect.
 * Not here yet: connection reuse, the queue and its retry schedule.
 */
import { connect } from "../net/conn.ts";
import type { Logger } from "../observe/log.ts";
import { LineReader } from "../wire/line_reader.ts";
import { reply } from "../wire/reply.ts";
import type { Reply } from "../wire/reply.ts";
import {
  type MessageResult,
  type OutboundMessage,
  type RecipientResult,
  SmtpSender,
} from "../smtp/sender.ts";
import { type NameServer, resolveMx } from "./mx.ts";

/** How to reach the world; every field but `helo` and `log` has a default. */
export interface DeliveryOptions {
  /** Our EHLO name (`outbound.helo`). */
  readonly helo: string;
  readonly log: Logger;
  /** `outbound.resolver`; default: the system's. */
  readonly nameServer?: NameServer | undefined;
  /** SMTP port of MX hosts; 25 (a test may not change what a deployment would not). */
  readonly port?: number;
  readonly connectTimeoutMs?: number;
  /** `outbound.tls`; default opportunistic. */
  readonly tls?: "opportunistic" | "required";
  /** Random source for equal MX preferences. */
  readonly random?: () => number;
}

/** The outcome for the message's recipients, and the host that decided it. */
export interface DeliveryResult {
  readonly recipients: readonly RecipientResult[];
  /** `name[address]` of the host that took the transaction, if one did. */
  readonly host: string | undefined;
}

const SMTP_PORT = 25;
/** `outbound.tls: required` and the host offers no STARTTLS (RFC 5248: X.7.10 encryption needed). */
const TLS_REQUIRED: Reply = reply(451, "4.7.10", "TLS required but not offered");
const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/** Delivers `message` (whose recipients are all in `domain`). Never throws for peer faults. */
export async function deliverToDomain(
  domain: string,
  message: OutboundMessage,
  opts: DeliveryOptions,
): Promise<DeliveryResult> {
  const mx = await resolveMx(domain, {
    nameServer: opts.nameServer,
    ...(opts.random ? { random: opts.random } : {}),
  });
  if (mx.kind === "permanent") {
    const text = mx.reason === "null_mx"
      ? "Domain does not accept mail (null MX)"
      : "Domain has no mail server";
    return settleAll(message, "failed", reply(550, mx.status, text), undefined);
  }
  if (mx.kind === "temporary") {
    opts.log.info("outbound_dns_failed", { domain, reason: mx.reason, detail: mx.detail });
    return settleAll(
      message,
      "deferred",
      reply(451, mx.status, "Mail server lookup failed"),
      undefined,
    );
  }
  let last: Reply = reply(451, "4.4.1", "No mail server answered");
  for (const host of mx.hosts) {
    for (const address of host.addresses) {
      const where = `${host.name}[${address}]`;
      const attempt = await tryHost({ name: host.name, address }, message, opts);
      if (attempt.kind === "skipped") {
        opts.log.info("outbound_host_skipped", { domain, host: where, reply: attempt.reason });
        last = attempt.reply;
        continue;
      }
      return { recipients: attempt.result.recipients, host: where };
    }
  }
  return settleAll(message, "deferred", last, undefined);
}

type Attempt =
  | { readonly kind: "sent"; readonly result: MessageResult }
  | { readonly kind: "skipped"; readonly reply: Reply; readonly reason: string };

async function tryHost(
  host: { readonly name: string; readonly address: string },
  message: OutboundMessage,
  opts: DeliveryOptions,
): Promise<Attempt> {
  const address = host.address;
  let conn;
  try {
    ({ conn } = await connect({
      host: address,
      port: opts.port ?? SMTP_PORT,
      timeoutMs: opts.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    }));
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    return { kind: "skipped", reply: reply(451, "4.4.1", "Connection failed"), reason };
  }
  try {
    const sender = new SmtpSender({
      conn,
      reader: new LineReader(conn),
      log: opts.log,
      options: { hostname: opts.helo, lineRecords: false },
    });
    const greeting = await sender.greet();
    if (greeting.code !== 220) {
      await sender.quit();
      return { kind: "skipped", reply: greeting, reason: `greeting ${greeting.code}` };
    }
    let hello = await sender.hello();
    if ("code" in hello) {
      await sender.quit();
      return { kind: "skipped", reply: hello, reason: `hello ${hello.code}` };
    }
    if (hello.startTls) {
      const tls = await sender.startTls({ servername: host.name, rejectUnauthorized: false });
      if ("code" in tls) {
        await sender.quit();
        return { kind: "skipped", reply: tls, reason: `starttls ${tls.code}` };
      }
      hello = await sender.hello();
      if ("code" in hello) {
        await sender.quit();
        return { kind: "skipped", reply: hello, reason: `hello after TLS ${hello.code}` };
      }
    } else if (opts.tls === "required") {
      await sender.quit();
      return { kind: "skipped", reply: TLS_REQUIRED, reason: "no STARTTLS offered" };
    }
    const result = await sender.send(message);
    await sender.quit();
    return { kind: "sent", result };
  } finally {
    await conn.close();
  }
}

function settleAll(
  message: OutboundMessage,
  outcome: RecipientResult["outcome"],
  r: Reply,
  host: string | undefined,
): DeliveryResult {
  return { recipients: message.recipients.map((x) => ({ id: x.id, outcome, reply: r })), host };
}
