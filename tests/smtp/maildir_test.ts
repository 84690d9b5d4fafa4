import assert from "node:assert/strict";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { MaildirSink, uniqueMaildirName } from "../../src/smtp/sinks/maildir.ts";
import type { SinkTransaction } from "../../src/smtp/sink.ts";
import { sessionInfo } from "../_helpers/session_info.ts";

const SESSION = sessionInfo({ isSecure: true, protocol: "ESMTPS" });
const enc = new TextEncoder();

async function openTx(root: string): Promise<SinkTransaction> {
  const sink = new MaildirSink({ path: root, hostname: "pi.home" });
  const tx = await sink.begin({ address: "from@example.net", params: {} }, SESSION);
  assert("write" in tx, "begin must give a transaction");
  return tx;
}

async function listNew(root: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(`${root}/new`)) names.push(e.name);
  return names;
}

async function listTmp(root: string): Promise<string[]> {
  const names: string[] = [];
  for await (const e of Deno.readDir(`${root}/tmp`)) names.push(e.name);
  return names;
}

/** Every byte value except CR and LF, plus dot lines and 8-bit text. */
function sampleBody(): Uint8Array {
  const parts: number[] = [];
  const push = (s: string) => parts.push(...enc.encode(s));
  push("Subject: t\r\n\r\n.\r\n..\r\n. leading dot\r\ncaf\u00e9 \u65e5\u672c\r\n");
  for (let b = 0; b < 256; b++) if (b !== 13 && b !== 10) parts.push(b);
  push("\r\nlast line\r\n");
  return Uint8Array.from(parts);
}

function crlfToLf(bytes: Uint8Array): Uint8Array {
  const out: number[] = [];
  for (let i = 0; i < bytes.length; i++) {
    if (bytes[i] === 13 && bytes[i + 1] === 10) continue;
    out.push(bytes[i] as number);
  }
  return Uint8Array.from(out);
}

Deno.test("MaildirSink creates tmp/ new/ cur/ with mode 0700 and writes one file into new/", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const root = `${dir}/Maildir`;
    const tx = await openTx(root);
    assertEquals(
      (await tx.addRecipient({ address: "a@example.org", domain: "example.org" })).code,
      250,
    );
    await tx.write(enc.encode("Subject: hi\r\n\r\nbody\r\n"));
    const r = await tx.finish();
    assertEquals(r.code, 250);
    for (const sub of ["tmp", "new", "cur"]) {
      assertEquals((await Deno.stat(`${root}/${sub}`)).mode! & 0o777, 0o700);
    }
    const names = await listNew(root);
    assertEquals(names.length, 1);
    assertEquals(await listTmp(root), []);
    const text = await Deno.readTextFile(`${root}/new/${names[0]}`);
    assertEquals(
      text,
      "Return-Path: <from@example.net>\nDelivered-To: a@example.org\nSubject: hi\n\nbody\n",
    );
    assertEquals((await Deno.stat(`${root}/new/${names[0]}`)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MaildirSink is byte-exact after CRLF→LF whatever the chunking (8-bit, dot lines)", async (t) => {
  const body = sampleBody();
  const want = crlfToLf(body);
  const dir = await Deno.makeTempDir();
  try {
    const splits = [
      { name: "whole", sizes: [body.length] },
      { name: "one byte at a time", sizes: Array(body.length).fill(1) },
      ...[1, 2, 3, 17, 18, 19, 20].map((at) => ({ name: `split at ${at}`, sizes: [at] })),
    ];
    for (const split of splits) {
      await t.step(split.name, async () => {
        const root = `${dir}/${split.name.replaceAll(" ", "_")}`;
        const tx = await openTx(root);
        await tx.addRecipient({ address: "a@example.org", domain: "example.org" });
        let at = 0;
        for (const size of split.sizes) {
          await tx.write(body.slice(at, at + size));
          at += size;
        }
        if (at < body.length) await tx.write(body.slice(at));
        assertEquals((await tx.finish()).code, 250);
        const [name] = await listNew(root);
        const got = await Deno.readFile(`${root}/new/${name}`);
        const head = enc.encode("Return-Path: <from@example.net>\nDelivered-To: a@example.org\n");
        assertEquals(got.subarray(0, head.length), head);
        assertEquals(got.subarray(head.length), want);
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MaildirSink writes one file per message with a Delivered-To per recipient", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tx = await openTx(dir);
    await tx.addRecipient({ address: "a@example.org", domain: "example.org" });
    await tx.addRecipient({ address: "b@example.org", domain: "example.org" });
    await tx.write(enc.encode("x\r\n"));
    assertEquals((await tx.finish()).code, 250);
    const names = await listNew(dir);
    assertEquals(names.length, 1);
    const text = await Deno.readTextFile(`${dir}/new/${names[0]}`);
    assert(text.startsWith("Return-Path: <from@example.net>\nDelivered-To: a@example.org\n"));
    assert(text.includes("Delivered-To: b@example.org\nx\n"));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MaildirSink abort() leaves nothing in new/ and removes the tmp/ file", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const tx = await openTx(dir);
    await tx.addRecipient({ address: "a@example.org", domain: "example.org" });
    await tx.write(enc.encode("half a mess"));
    assertEquals((await listTmp(dir)).length, 1);
    await tx.abort();
    assertEquals(await listNew(dir), []);
    assertEquals(await listTmp(dir), []);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("MaildirSink answers 451 when the Maildir cannot be created", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(`${dir}/file`, "not a directory");
    const sink = new MaildirSink({ path: `${dir}/file/Maildir`, hostname: "pi" });
    const r = await sink.begin({ address: "", params: {} }, SESSION);
    assert("code" in r);
    assertEquals(r.code, 451);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("uniqueMaildirName() gives distinct names and escapes / and : in the host", () => {
  const a = uniqueMaildirName("a/b:c", 1_700_000_000_123);
  const b = uniqueMaildirName("a/b:c", 1_700_000_000_123);
  assert(a !== b);
  assert(a.startsWith("1700000000.M123"));
  assert(a.endsWith(".a\\057b\\072c"));
});
