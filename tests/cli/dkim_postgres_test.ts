/**
 * `dkim keygen|list|remove` and serve's signer with `queue.backend: postgres` (#15): two nodes
 * (own data_dir each) on one database see the same keys, and a signature made with node B's
 * keys verifies (python3-dkim) against the TXT record node A's `keygen` printed, served by
 * dnsmasq.
 */
import { deepStrictEqual as assertEquals, equal, match, ok, rejects } from "node:assert/strict";
import { dkimCommand } from "../../src/cli/dkim.ts";
import type { StorageChoice } from "../../src/cli/io.ts";
import { openServeBackend } from "../../src/cli/_backend.ts";
import { parseConfig } from "../../src/config/parse.ts";
import { DkimSigner } from "../../src/dkim/signer.ts";
import { NULL_LOGGER } from "../../src/observe/log.ts";
import { verifyDkimBatch } from "../_helpers/dkim.ts";
import { startDnsmasq } from "../_helpers/dnsmasq.ts";
import { postgresTest } from "../_helpers/postgres.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { requireTools, skipUnless } from "../_helpers/tools.ts";
import { recordingIo } from "./_io.ts";
import { loadNodeCrypto } from "../../src/auth/node_crypto.ts";

// The synchronous computations under test take node:crypto once it is loaded.
await loadNodeCrypto();

const NOW = () => new Date("2026-11-28T06:00:00Z");
const TOOLS = ["dkimverify", "dnsmasq"];

async function dkim(dataDir: string, storage: StorageChoice, argv: string[]) {
  const io = recordingIo({ dataDir, storage });
  const code = await dkimCommand(argv, io, { now: NOW });
  return { code, out: io.out, err: io.err };
}

/** The printed zone line: its owner name and its quoted character-strings. */
function printedRecord(out: string): { name: string; strings: string[] } {
  const zone = out.split("\n").find((l) => l.includes(" IN TXT "));
  ok(zone !== undefined, out);
  const name = zone.split(". IN TXT ")[0]!;
  return { name, strings: [...zone.matchAll(/"([^"]*)"/g)].map((m) => m[1]!) };
}

function listJson(out: string): { selector: string; dns_txt: string }[] {
  return (JSON.parse(out) as { selector: string; dns_txt: string }[])
    .map((r) => ({ selector: r.selector, dns_txt: r.dns_txt }));
}

const NAME = "dkim on PostgreSQL: a key made through node A is listed, used to sign and " +
  "removed through node B; never overwritten (#15)";

if (await skipUnless(NAME, ...TOOLS)) {
  Deno.test({ name: NAME, ignore: true, fn: () => {} });
} else {
  await postgresTest(NAME, async (pg, t) => {
    await requireTools(...TOOLS);
    const url = await pg.createDatabase("dkim_nodes");
    const storage: StorageChoice = {
      backend: "postgres",
      postgres: { url, passwordFile: undefined },
    };
    await withTempDataDir(async (dirA) => {
      await withTempDataDir(async (dirB) => {
        const ed = await dkim(dirA, storage, [
          "keygen",
          "Example.ORG",
          "--algorithm",
          "ed25519",
          "--selector",
          "ed1",
        ]);
        equal(ed.code, 0, ed.err);
        const rsa = await dkim(dirA, storage, ["keygen", "example.org", "--selector", "rsa1"]);
        equal(rsa.code, 0, rsa.err);
        const records = [printedRecord(ed.out), printedRecord(rsa.out)];
        assertEquals(records.map((r) => r.name), [
          "ed1._domainkey.example.org",
          "rsa1._domainkey.example.org",
        ]);

        await t.step("nothing is written to node A's data_dir", async () => {
          await rejects(Deno.stat(`${dirA}/dkim`), Deno.errors.NotFound);
        });

        await t.step("node B lists both keys with the TXT texts A printed", async () => {
          const list = await dkim(dirB, storage, ["list", "--json"]);
          equal(list.code, 0, list.err);
          assertEquals(listJson(list.out), [
            { selector: "ed1", dns_txt: records[0]!.strings.join("") },
            { selector: "rsa1", dns_txt: records[1]!.strings.join("") },
          ]);
        });

        await t.step(
          "a keygen of an existing selector through B is refused, key unchanged",
          async () => {
            const again = await dkim(dirB, storage, [
              "keygen",
              "example.org",
              "--algorithm",
              "ed25519",
              "--selector",
              "ed1",
            ]);
            equal(again.code, 1);
            match(again.err, /already exists/);
            const list = await dkim(dirA, storage, ["list", "--json"]);
            equal(listJson(list.out)[0]?.dns_txt, records[0]!.strings.join(""));
            // Two nodes racing for one new selector: exactly one wins.
            const keygen = ["keygen", "example.net", "--algorithm", "ed25519", "--selector", "s"];
            const race = await Promise.all([dirA, dirB].map((dir) => dkim(dir, storage, keygen)));
            assertEquals(race.map((r) => r.code).sort(), [0, 1]);
          },
        );

        const config = parseConfig(
          `hostname: b.example.net\ndata_dir: ${dirB}\nqueue:\n  backend: postgres\n` +
            `  postgres:\n    url: ${url}\n`,
          { source: undefined, baseDir: dirB, systemHostname: () => "b.example.net" },
        );
        const backend = await openServeBackend(config, { logger: NULL_LOGGER });
        try {
          await t.step("serve on node B signs with the keys; both signatures verify", async () => {
            const keys = await backend.dkimKeys.keysFor("example.org");
            assertEquals(keys.map((k) => k.algorithm), ["ed25519-sha256", "rsa-sha256"]);
            const message = new TextEncoder().encode(
              "From: Alice <alice@example.org>\r\nTo: bob@example.com\r\nSubject: hi\r\n\r\n" +
                "Hello from node B\r\n",
            );
            const signer = new DkimSigner();
            signer.update(message);
            const result = await signer.finish(keys, NOW());
            ok(result.ok, result.ok ? "" : result.reason);
            const signed = Uint8Array.from([...result.fields, ...message]);
            await using dns = await startDnsmasq({ txt: records });
            const verdicts = await verifyDkimBatch(
              [0, 1].map((index) => ({ message: signed, index })),
              { dns: dns.address },
            );
            for (const v of verdicts) ok(v.ok, v.output);
          });

          await t.step("a key made through A while B serves signs without a restart", async () => {
            const gen = await dkim(dirA, storage, [
              "keygen",
              "example.org",
              "--algorithm",
              "ed25519",
              "--selector",
              "ed2",
            ]);
            equal(gen.code, 0, gen.err);
            const keys = await backend.dkimKeys.keysFor("example.org");
            assertEquals(keys.map((k) => k.selector), ["ed1", "ed2", "rsa1"]);
          });

          await t.step("remove through B: gone for A's list and for B's signer", async () => {
            const rm = await dkim(dirB, storage, ["remove", "example.org", "ed1"]);
            equal(rm.code, 0, rm.err);
            const list = await dkim(dirA, storage, ["list", "--json"]);
            assertEquals(listJson(list.out).map((r) => r.selector), ["s", "ed2", "rsa1"]);
            const keys = await backend.dkimKeys.keysFor("example.org");
            assertEquals(keys.map((k) => k.selector), ["ed2", "rsa1"]);
            const again = await dkim(dirB, storage, ["remove", "example.org", "ed1"]);
            equal(again.code, 1);
            match(again.err, /No DKIM key/);
          });
        } finally {
          await backend.close();
        }
        await rejects(Deno.stat(`${dirB}/dkim`), Deno.errors.NotFound);
      });
    });
  });
}
