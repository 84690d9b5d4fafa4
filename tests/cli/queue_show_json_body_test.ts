/**
 * `queue show ID --json --body`: CONTRACT writes the two flags as independent (`queue show ID
 * [--json] [--body]`), so together they give the `--json` object with the raw stored message in
 * it, `"body_base64"` (the bytes as stored, base64: a message need not be UTF-8), streamed a
 * stored chunk at a time like `--body`. The real process, a binary body over several chunks
 * (64 KiB each, not a multiple of 3 bytes: the encoding carries across chunk ends).
 */
import assert from "node:assert/strict";
import { decodeBase64 } from "../../src/wire/base64.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";
import { runMain, seedQueue } from "./_queue_seed.ts";

const T0 = Date.UTC(2026, 0, 10, 12, 0, 0);

Deno.test("main.ts queue show --json --body gives the --json object plus body_base64, byte-exact", async () => {
  await withTempDataDir(async (dir) => {
    const dataDir = `${dir}/data`;
    const config = `${dir}/config.yaml`;
    await Deno.writeTextFile(config, `data_dir: ${JSON.stringify(dataDir)}\n`);
    for (const size of [0, 1, 2, 150_000]) {
      const body = new Uint8Array(size);
      for (let i = 0; i < size; i++) body[i] = (i * 131 + (i >> 8)) & 0xff;
      const [id] = await seedQueue(dataDir, [{ to: ["a@one.test"], at: T0, body }]);
      assert.ok(id);
      const json = await runMain(["queue", "show", id, "--json", "--config", config]);
      assert.equal(json.code, 0, json.stderr);
      for (const flags of [["--json", "--body"], ["--body", "--json"]]) {
        const both = await runMain(["queue", "show", id, ...flags, "--config", config]);
        assert.equal(both.code, 0, both.stderr);
        const shown = JSON.parse(new TextDecoder().decode(both.stdout));
        const { body_base64: encoded, ...rest } = shown;
        assert.deepEqual(rest, JSON.parse(new TextDecoder().decode(json.stdout)));
        assert.equal(typeof encoded, "string", `size ${size}`);
        assert.deepEqual(decodeBase64(encoded), body, `size ${size}`);
      }
    }
  });
});
