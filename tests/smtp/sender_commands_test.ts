import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { planEnvelope, toXtext } from "../../src/smtp/_sender_commands.ts";
import { heloCapabilities, parseEhloReply } from "../../src/wire/ehlo.ts";

const ALL = parseEhloReply({
  code: 250,
  lines: ["mx", "SIZE 1000", "8BITMIME", "SMTPUTF8", "DSN", "PIPELINING"],
});
const NONE = heloCapabilities({ code: 250, lines: ["mx"] });

Deno.test("planEnvelope() writes MAIL FROM:<…> without a space and only offered parameters", () => {
  const msg = {
    mailFrom: "",
    params: { body: "8BITMIME", ret: "FULL", envid: "a+b=c" } as const,
    size: 1234,
    recipients: [{ id: 1, address: "u@d.test", notify: "never", orcpt: "rfc822;u+x@d.test" }],
  };
  assertEquals(planEnvelope(msg, ALL), {
    kind: "send",
    mailLine: "MAIL FROM:<> SIZE=1234 BODY=8BITMIME RET=FULL ENVID=a+2Bb+3Dc",
    isPrdr: false,
    rcptLines: ["RCPT TO:<u@d.test> NOTIFY=NEVER ORCPT=rfc822;u+2Bx@d.test"],
  });
  assertEquals(planEnvelope({ ...msg, params: {} }, NONE), {
    kind: "send",
    mailLine: "MAIL FROM:<>",
    isPrdr: false,
    rcptLines: ["RCPT TO:<u@d.test>"],
  });
});

Deno.test("planEnvelope() asks for PRDR only from a peer that offers it and for 2+ recipients (#10)", () => {
  const PRDR = parseEhloReply({ code: 250, lines: ["mx", "PIPELINING", "PRDR"] });
  const one = {
    mailFrom: "s@x.test",
    params: {},
    size: 1,
    recipients: [{ id: 1, address: "a@d.test" }],
  };
  const two = { ...one, recipients: [...one.recipients, { id: 2, address: "b@d.test" }] };
  const oneSendable = { ...one, recipients: [...one.recipients, { id: 2, address: "b>@d.test" }] };
  const mail = (plan: ReturnType<typeof planEnvelope>) => plan.kind === "send" ? plan.mailLine : "";
  assertEquals(mail(planEnvelope(two, PRDR)), "MAIL FROM:<s@x.test> PRDR");
  assertEquals(mail(planEnvelope(one, PRDR)), "MAIL FROM:<s@x.test>");
  assertEquals(mail(planEnvelope(oneSendable, PRDR)), "MAIL FROM:<s@x.test>");
  assertEquals(mail(planEnvelope(two, ALL)), "MAIL FROM:<s@x.test> SIZE=1");
});

Deno.test("planEnvelope() never lets CR, LF or brackets into a command line", () => {
  const plan = planEnvelope({
    mailFrom: "s@x.test",
    params: {},
    size: 1,
    recipients: [
      { id: 1, address: "a@x.test\r\nRCPT TO:<evil@y.test>" },
      { id: 2, address: "b>@x.test" },
      { id: 3, address: "ok@x.test", notify: "SUCCESS\r\nDATA" },
    ],
  }, ALL);
  assertEquals(plan.kind, "send");
  if (plan.kind !== "send") return;
  assertEquals(plan.rcptLines.map((l) => typeof l === "string" ? l : l.refused.code), [
    553,
    553,
    "RCPT TO:<ok@x.test>",
  ]);
  const bad = planEnvelope({ mailFrom: "a\nb@x", params: {}, size: 1, recipients: [] }, ALL);
  assertEquals(bad.kind === "refused" && bad.reply.enhanced, "5.1.7");
});

Deno.test("planEnvelope() refuses BINARYMIME (no BDAT support) with 5.6.3", () => {
  const plan = planEnvelope(
    { mailFrom: "", params: { body: "BINARYMIME" }, size: 1, recipients: [] },
    ALL,
  );
  assertEquals(plan.kind === "refused" && plan.reply.enhanced, "5.6.3");
});

Deno.test("toXtext() passes valid xtext and encodes the rest", () => {
  assertEquals(toXtext("QQ314159"), "QQ314159");
  assertEquals(toXtext("a+2Bb"), "a+2Bb");
  assertEquals(toXtext("a b"), "a+20b");
  assertEquals(toXtext("é"), "+C3+A9");
});
