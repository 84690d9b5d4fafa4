/**
 * In pg_stat_activity a node's pools are told apart by their application_name: the node's
 * name (`odmr-relay HOSTNAME`), then " long" and " chunks" for the other two pools. PostgreSQL
 * keeps 63 bytes of it: with a long host name the suffixes were cut off, and the three pools
 * looked alike. The name before the suffix is shortened instead.
 */
import assert from "node:assert/strict";
import postgres from "postgres";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { postgresTest } from "../_helpers/postgres.ts";

await postgresTest(
  "PostgreSQL: a long host name keeps the pools' suffixes in application_name",
  async (pg) => {
    const url = await pg.createDatabase("pool_names");
    const name = `odmr-relay ${"mx-".repeat(16)}example.net`; // 70 characters
    const store = await PgQueueStore.open({ url, applicationName: name }, { nodeId: "n1" });
    const raw = postgres(url, { max: 1, onnotice: () => {} });
    try {
      // Each pool has opened a connection by now (its first query, at open).
      const rows = await raw`SELECT DISTINCT application_name AS name FROM pg_stat_activity
      WHERE application_name LIKE 'odmr-relay %' ORDER BY 1`;
      const names = rows.map((r) => String(r.name));
      assert.equal(names.length, 3, names.join(" | "));
      assert.ok(names.some((n) => n.endsWith(" long")), names.join(" | "));
      assert.ok(names.some((n) => n.endsWith(" chunks")), names.join(" | "));
      for (const n of names) {
        assert.ok(n.startsWith("odmr-relay mx-mx-"), n);
        assert.ok(new TextEncoder().encode(n).length <= 63, n);
      }
    } finally {
      await raw.end({ timeout: 1 });
      await store.close();
    }
  },
);
