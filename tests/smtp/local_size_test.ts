/**
 * The customer's local hand-off passes the provider's SIZE= estimate on when the local MTA
 * offers SIZE (RFC 1870 §6), and only then: a local MTA with a smaller limit then refuses the
 * message at MAIL, before its body crosses the link, rather than after the whole body (the
 * customer was handed every octet of a message its MTA could never take). Against the capture
 * server (offers SIZE), Postfix's smtp-sink (offers none) and a real Postfix smtpd.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import type { MailFrom } from "../../src/smtp/sink.ts";
import { LocalSmtpSink } from "../../src/smtp/sinks/local_smtp.ts";
import { withCapturedSink } from "../_helpers/captured_sink.ts";
import { postfixUnavailable, startPrivatePostfix } from "../_helpers/postfix.ts";
import { sessionInfo } from "../_helpers/session_info.ts";
import { SmtpSink } from "../_helpers/smtp_sink.ts";
import { isCi, toolTest } from "../_helpers/tools.ts";

const SESSION = sessionInfo();
const enc = new TextEncoder();

function mail(declaredSize?: number): MailFrom {
  return {
    address: "s@example.net",
    params: {},
    ...(declaredSize === undefined ? {} : { declaredSize }),
  };
}

/** Begins a transaction with `m`, adds one recipient, sends `body`: the replies. */
async function deliverOne(sink: LocalSmtpSink, m: MailFrom, body: Uint8Array) {
  const tx = await sink.begin(m, SESSION);
  if ("code" in tx) return { mail: tx, rcpt: undefined, final: undefined };
  const rcpt = await tx.addRecipient({ address: "a@example.org", domain: "example.org" });
  if (rcpt.code !== 250) {
    await tx.abort();
    return { mail: undefined, rcpt, final: undefined };
  }
  await tx.write(body);
  return { mail: undefined, rcpt, final: await tx.finish() };
}

Deno.test("LocalSmtpSink passes SIZE= on to a local MTA that offers SIZE, with and without PIPELINING", async () => {
  for (const pipelining of [true, false]) {
    await withCapturedSink({ pipelining }, async (sink, capture) => {
      const body = enc.encode("Subject: s\r\n\r\nhello\r\n");
      assertEquals((await deliverOne(sink, mail(4321), body)).final?.code, 250);
      assertEquals((await deliverOne(sink, mail(), body)).final?.code, 250);
      const mails = capture.commands.filter((c) => c.startsWith("MAIL "));
      assertEquals(mails, ["MAIL FROM:<s@example.net> SIZE=4321", "MAIL FROM:<s@example.net>"]);
    });
  }
});

await toolTest("LocalSmtpSink sends no SIZE= to Postfix's smtp-sink, which offers no SIZE", [
  "smtp-sink",
], async () => {
  await using postfix = await SmtpSink.start(undefined, { dumpDir: true });
  const sink = new LocalSmtpSink({
    target: { kind: "smtp", host: postfix.host, port: postfix.port },
    hostname: "pi.home",
  });
  try {
    const r = await deliverOne(sink, mail(4321), enc.encode("Subject: s\r\n\r\nhi\r\n"));
    assertEquals(r.final?.code, 250);
  } finally {
    await sink.close();
  }
  assert(await postfix.waitMessages(1, 10_000), "smtp-sink took the message");
  const dumps: string[] = [];
  const read = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      if (e.isDirectory) await read(`${dir}/${e.name}`);
      else dumps.push(await Deno.readTextFile(`${dir}/${e.name}`));
    }
  };
  await read(postfix.dir ?? "");
  assertEquals(dumps.length, 1);
  assert(/^X-Mail-Args: <s@example\.net>\r?$/m.test(dumps[0] ?? ""), dumps[0]);
});

const POSTFIX_TEST =
  "LocalSmtpSink: a real Postfix smtpd refuses a message over its size limit at MAIL";
const why = await postfixUnavailable();
if (why !== undefined && isCi()) throw new Error(`${why}, and CI=true forbids skipping`);
// deno-lint-ignore no-console -- the printed reason is the point of a skip
if (why !== undefined) console.log(`skip: ${POSTFIX_TEST}: ${why}`);

Deno.test({ name: POSTFIX_TEST, ignore: why !== undefined }, async () => {
  await using postfix = await startPrivatePostfix({
    "mynetworks": "127.0.0.0/8",
    "message_size_limit": "2000",
    "relay_domains": "example.org",
    "smtpd_recipient_restrictions": "permit_mynetworks, reject",
  }, { smtpdPort: "spare" });
  const sink = new LocalSmtpSink({
    target: { kind: "smtp", host: "127.0.0.1", port: postfix.smtpdPort ?? 0 },
    hostname: "pi.home",
  });
  try {
    const big = enc.encode(`Subject: big\r\n\r\n${"x".repeat(78)}\r\n`.repeat(60));
    const r = await deliverOne(sink, mail(big.length), big);
    // Postfix answers MAIL 552 5.3.4; the recipient gets it as 554 (RFC 5321 §4.5.3.1.10:
    // a 552 to RCPT would read as "too many recipients").
    assertEquals([r.mail?.code ?? r.rcpt?.code, (r.mail ?? r.rcpt)?.enhanced], [554, "5.3.4"]);
    assertEquals(r.final, undefined, "refused before the body");
    // A small one declared as small still goes through the same link.
    const small = enc.encode("Subject: small\r\n\r\nhi\r\n");
    assertEquals((await deliverOne(sink, mail(small.length), small)).final?.code, 250);
  } finally {
    await sink.close();
  }
  const log = await postfix.log();
  assert(/reject: MAIL from .*552 5\.3\.4/.test(log), log.slice(-2000));
});
