/**
 * `queue migrate` copies a queue much larger than its memory: it reads the SQLite queue a page
 * at a time, not the whole message list first. Here 100 messages to 10 recipients each, every
 * recipient with a 51 KB last reply (a 4xx of 100 lines of 512 octets, the most a customer or
 * an MX may give and the relay keeps), 51 MB in all, are copied by a migrate whose V8 heap is
 * capped at 48 MB: a list held whole does not fit (the process dies, out of memory), one
 * message at a time does.
 */
import assert from "node:assert/strict";
import { DatabaseSync } from "node:sqlite";
import { PgQueueStore } from "../../src/queue/pg/store.ts";
import { newQueueId } from "../../src/queue/id.ts";
import { queueMessage } from "../_helpers/queue_fixtures.ts";
import { REPO_ROOT } from "../_helpers/server_process.ts";
import { inSqliteQueue, migrateTest } from "./_migrate.ts";

const MESSAGES = 100;
const RECIPIENTS = 10;
const REPLY_BYTES = 51_200;
const HEAP_MB = 48;

/**
 * Copies the message `id` (its rows as stored) `n` times under new ids, each with RECIPIENTS
 * copies of its recipient, with a long reply.
 */
function cloneMessage(dataDir: string, id: string, n: number): void {
  const db = new DatabaseSync(`${dataDir}/odmr.db`);
  try {
    const columns = (table: string, skip: string) =>
      db.prepare(`PRAGMA table_info(${table})`).all().map((c) => String(c.name))
        .filter((name) => name !== skip);
    const messageColumns = columns("messages", "id");
    const recipientColumns = columns("recipients", "id")
      .filter((name) => name !== "message_id" && name !== "last_reply");
    const copyMessage = db.prepare(
      `INSERT INTO messages (id, ${messageColumns.join(", ")})
        SELECT ?, ${messageColumns.join(", ")} FROM messages WHERE id = ?`,
    );
    const copyRecipients = db.prepare(
      `INSERT INTO recipients (message_id, last_reply, ${recipientColumns.join(", ")})
        SELECT ?, ?, ${recipientColumns.join(", ")} FROM recipients WHERE message_id = ?`,
    );
    const reply = `451-4.3.0 ${"x".repeat(500)}\r\n`.repeat(REPLY_BYTES / 512).trimEnd();
    db.exec("BEGIN");
    let at = Date.now() - 60_000;
    for (let i = 0; i < n; i++) {
      const copy = newQueueId(at++);
      copyMessage.run(copy, id);
      for (let r = 0; r < RECIPIENTS; r++) copyRecipients.run(copy, reply, id);
    }
    db.exec("COMMIT");
  } finally {
    db.close();
  }
}

await migrateTest(
  `queue migrate copies a queue larger than its memory (${MESSAGES} messages to ${RECIPIENTS} recipients with 51 KB replies under a ${HEAP_MB} MB heap)`,
  "migrate_memory",
  async ({ url, configPath, dataDir }) => {
    const first = await inSqliteQueue(
      dataDir,
      (old) => queueMessage(old, { from: "s@sender.test", to: ["u@example.org"] }),
    );
    cloneMessage(dataDir, first, MESSAGES);
    // The original goes: every message copied has RECIPIENTS recipients.
    await inSqliteQueue(dataDir, (old) => old.delete([first]));
    const out = await new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        `--v8-flags=--max-old-space-size=${HEAP_MB}`,
        `${REPO_ROOT}main.ts`,
        "queue",
        "migrate",
        "--config",
        configPath,
      ],
      cwd: REPO_ROOT,
      stdout: "piped",
      stderr: "piped",
      env: { NO_COLOR: "1" },
    }).output();
    const stdout = new TextDecoder().decode(out.stdout);
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, `exit ${out.code}: ${stderr.slice(-2000)}`);
    assert.match(stdout, new RegExp(`^Copied ${MESSAGES} message\\(s\\) \\(0 already copied\\)`));
    const node = await PgQueueStore.open({ url }, { nodeId: "mx-a.test" });
    try {
      const [row] = await node.pool`SELECT count(*)::int AS n FROM recipients
        WHERE length(last_reply) = ${REPLY_BYTES - 2}`;
      assert.equal(row?.n, MESSAGES * RECIPIENTS);
    } finally {
      await node.close();
    }
  },
);
