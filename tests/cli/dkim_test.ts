import { deepStrictEqual as assertEquals, equal, match, ok } from "node:assert/strict";
import crypto from "node:crypto";
import { dkimCommand } from "../../src/cli/dkim.ts";
import { runCli } from "../../src/cli/main.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { recordingIo } from "./_io.ts";

const NOW = () => new Date("2026-11-28T06:00:00Z");

async function dkim(dir: string, argv: string[]) {
  const io = recordingIo(dir);
  const code = await dkimCommand(argv, io, { now: NOW });
  return { code, out: io.out, err: io.err };
}

/** The TXT text a zone line carries: its quoted strings joined. */
function txtOf(zoneLine: string): string {
  return [...zoneLine.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join("");
}

Deno.test("dkim keygen stores a 0600 key and prints the TXT record that list --json shows", async () => {
  await withTempDataDir(async (dir) => {
    const gen = await dkim(dir, ["keygen", "Example.ORG", "--algorithm", "ed25519"]);
    equal(gen.code, 0, gen.err);
    match(gen.out, /selector "ed25519-20261128"/);
    const zone = gen.out.split("\n").find((l) => l.includes(" IN TXT "));
    ok(zone !== undefined, gen.out);
    match(zone, /^ed25519-20261128\._domainkey\.example\.org\. IN TXT \( "v=DKIM1; k=ed25519; p=/);
    const file = `${dir}/dkim/example.org/ed25519-20261128.pem`;
    equal((await Deno.stat(file)).mode! & 0o777, 0o600);
    equal((await Deno.stat(`${dir}/dkim`)).mode! & 0o777, 0o700);
    equal((await Deno.stat(`${dir}/dkim/example.org`)).mode! & 0o777, 0o700);
    // The printed public key is the one of the stored private key.
    const key = crypto.createPrivateKey(await Deno.readTextFile(file));
    const raw = crypto.createPublicKey(key).export({ type: "spki", format: "der" }).subarray(12);
    equal(txtOf(zone), `v=DKIM1; k=ed25519; p=${raw.toString("base64")}`);
    ok(!gen.out.includes("PRIVATE KEY"));

    const list = await dkim(dir, ["list", "--json"]);
    equal(list.code, 0, list.err);
    const rows = JSON.parse(list.out);
    assertEquals(rows.length, 1);
    assertEquals(rows[0].domain, "example.org");
    assertEquals(rows[0].selector, "ed25519-20261128");
    assertEquals(rows[0].algorithm, "ed25519");
    assertEquals(rows[0].dns_name, "ed25519-20261128._domainkey.example.org");
    assertEquals(rows[0].dns_txt, txtOf(zone));

    // The text form carries the same record (operators copy it into DNS): one line per key,
    // tab-separated, the JSON's fields in its order. Failed on main: only the first four.
    const text = await dkim(dir, ["list"]);
    equal(text.code, 0, text.err);
    assertEquals(text.out.split("\n").filter((l) => l !== "").map((l) => l.split("\t")), [[
      rows[0].domain,
      rows[0].selector,
      rows[0].algorithm,
      rows[0].created_at,
      rows[0].dns_name,
      rows[0].dns_txt,
    ]]);
  });
});

Deno.test("dkim keygen rsa: a 2048-bit key, its TXT record split into 255-byte strings", async () => {
  await withTempDataDir(async (dir) => {
    const gen = await dkim(dir, ["keygen", "example.org", "--selector", "mail"]);
    equal(gen.code, 0, gen.err);
    const zone = gen.out.split("\n").find((l) => l.includes(" IN TXT "))!;
    const strings = [...zone.matchAll(/"([^"]*)"/g)].map((m) => m[1]!);
    ok(strings.length >= 2 && strings.every((s) => s.length <= 255), zone);
    const key = crypto.createPrivateKey(
      await Deno.readTextFile(`${dir}/dkim/example.org/mail.pem`),
    );
    equal(key.asymmetricKeyDetails?.modulusLength, 2048);
    match(txtOf(zone), /^v=DKIM1; k=rsa; p=MII/);
  });
});

Deno.test("dkim keygen refuses to overwrite a key; remove deletes it; list shows the rest", async () => {
  await withTempDataDir(async (dir) => {
    equal(
      (await dkim(dir, ["keygen", "example.org", "--selector", "a", "--algorithm", "ed25519"]))
        .code,
      0,
    );
    const file = `${dir}/dkim/example.org/a.pem`;
    const before = await Deno.readTextFile(file);
    const again = await dkim(dir, [
      "keygen",
      "example.org",
      "--selector",
      "a",
      "--algorithm",
      "ed25519",
    ]);
    equal(again.code, 1);
    match(again.err, /already exists/);
    equal(await Deno.readTextFile(file), before);
    equal(
      (await dkim(dir, ["keygen", "example.net", "--selector", "b", "--algorithm", "ed25519"]))
        .code,
      0,
    );

    const text = await dkim(dir, ["list"]);
    assertEquals(
      text.out.split("\n").filter((l) => l !== "").map((l) => l.split("\t").slice(0, 3)),
      [
        ["example.net", "b", "ed25519"],
        ["example.org", "a", "ed25519"],
      ],
    );
    equal((await dkim(dir, ["remove", "example.org", "A"])).code, 0);
    const gone = await dkim(dir, ["remove", "example.org", "a"]);
    equal(gone.code, 1);
    match(gone.err, /No DKIM key for "example.org" with selector "a"/);
    assertEquals(
      JSON.parse((await dkim(dir, ["list", "--json"])).out).map((r: { domain: string }) =>
        r.domain
      ),
      [
        "example.net",
      ],
    );
  });
});

Deno.test("dkim: bad arguments are usage errors (exit 2) that name the problem", async (t) => {
  const rows: { argv: string[]; want: RegExp }[] = [
    { argv: [], want: /Missing subcommand/ },
    { argv: ["frob"], want: /Unknown subcommand "frob"/ },
    { argv: ["keygen"], want: /Missing DOMAIN/ },
    { argv: ["keygen", "localhost"], want: /Invalid domain "localhost"/ },
    { argv: ["keygen", "example.org", "--algorithm", "dsa"], want: /--algorithm: "dsa"/ },
    { argv: ["keygen", "example.org", "--selector", "../x"], want: /--selector: "\.\.\/x"/ },
    { argv: ["keygen", "example.org", "extra"], want: /Unexpected argument "extra"/ },
    { argv: ["remove", "example.org"], want: /Missing SELECTOR/ },
    { argv: ["remove", "example.org", "a/b"], want: /Invalid selector "a\/b"/ },
    { argv: ["list", "--bogus"], want: /bogus/ },
  ];
  await withTempDataDir(async (dir) => {
    for (const row of rows) {
      await t.step(row.argv.join(" ") || "(none)", async () => {
        const r = await dkim(dir, row.argv);
        equal(r.code, 2);
        match(r.err, row.want);
      });
    }
    // Nothing was created by a refused command.
    await Deno.stat(`${dir}/dkim`).then(() => ok(false, "dkim dir created"), () => {});
  });
});

Deno.test("odmr-relay dkim runs through the CLI with data_dir from --config", async () => {
  await withTempDataDir(async (dir) => {
    const config = `${dir}/c.yaml`;
    await Deno.writeTextFile(config, `data_dir: ${dir}/data\n`);
    let out = "";
    let err = "";
    const env = {
      env: {},
      cwd: dir,
      stdout: (s: string) => (out += s),
      stderr: (s: string) => (err += s),
    };
    const code = await runCli(
      ["dkim", "keygen", "example.org", "--algorithm", "ed25519", "--config", config],
      env,
    );
    equal(code, 0, err);
    equal(await runCli(["dkim", "list", "--json", "--config", config], env), 0);
    match(out, /"dns_name":"ed25519-\d{8}\._domainkey\.example\.org"/);
    equal(await runCli(["dkim", "--help"], env), 0);
    match(out, /dkim keygen DOMAIN/);
  });
});
