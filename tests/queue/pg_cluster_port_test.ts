/**
 * The test cluster's `start()` after `kill()` (tests/_helpers/postgres.ts) comes back on the
 * same port, which its clients' URLs name. Another process may take that port while the
 * cluster is down: the helper then says so and does not start, rather than leave the test's
 * clients talking to whatever holds the port; once the port is free again it starts.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { postgresTest } from "../_helpers/postgres.ts";

await postgresTest(
  "the test cluster does not come back on a port another process took while it was down",
  async (pg) => {
    await pg.kill();
    const squatter = Deno.listen({ hostname: "127.0.0.1", port: pg.port });
    try {
      const got = await pg.start().then(() => "started", (e) => String(e));
      assert.match(got, new RegExp(`127\\.0\\.0\\.1:${pg.port} is taken by another process`));
    } finally {
      squatter.close();
    }
    await pg.start();
    const sql = postgres(pg.url(), { max: 1, onnotice: () => {} });
    try {
      const [row] = await sql`SELECT current_setting('port') AS port`;
      assert.equal(row?.port, String(pg.port));
    } finally {
      await sql.end({ timeout: 1 });
    }
  },
);
