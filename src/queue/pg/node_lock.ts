/**
 * One running `serve` per node name (`hostname`) on a shared database. Leases are owned by
 * `HOSTNAME|session`, and a start drops every lease of its hostname (what its previous process
 * left, src/cli/serve.ts): a second node started with the same hostname would drop the first's
 * live leases, and both would deliver the same mail. So serve holds a session advisory lock
 * keyed on its hostname, on a connection of its own kept open for its whole life (no idle or
 * lifetime close); a second serve of that hostname finds it taken and refuses to start. A
 * crashed node's session ends with its process (the server sees the connection close), and
 * the lock with it, so a restart after a crash starts as before.
 *
 * A connection lost and re-made (a network cut, a server restart) no longer holds the lock:
 * every WATCH_EVERY_MS the lock connection is asked for its backend pid, and a new session
 * takes the lock again. When another serve of this hostname took it meanwhile, `lost`
 * resolves: serve stops (and takes no more leases). Until that check, a lost lock goes
 * unnoticed (at most WATCH_EVERY_MS plus a call's deadline).
 */
import type { Logger } from "../../observe/log.ts";
import { errorText } from "../../errors.ts";
import { NodeBusyError } from "../serve_lock.ts";
import { connectPostgres, type PgConnectOptions, poolName, type Sql } from "./connect.ts";
import { PG_CALL_DEADLINE_MS, statementTimeoutFor, within } from "./_deadline.ts";

/** How many times a start tries to take the lock, START_WAIT_MS apart. */
const START_TRIES = 6;
const START_WAIT_MS = 500;
/** How often the lock's connection is checked (and the lock taken again on a new session). */
export const WATCH_EVERY_MS = 5_000;

/** The lock of one node name, held by this process. */
export class PgNodeLock {
  readonly #sql: Sql;
  readonly #nodeId: string;
  readonly #log: Logger;
  readonly #deadlineMs: number;
  /** The backend that holds the lock. */
  #pid: number;
  #timer: ReturnType<typeof setInterval> | undefined;
  #isChecking = false;
  #onLost: (event: "node_lock_lost") => void = () => {};
  /** Resolves (once logged) when another serve of this node name holds the lock. */
  readonly lost: Promise<"node_lock_lost">;

  /**
   * Connects and takes the lock of `nodeId`; throws NodeBusyError (naming the hostname) when
   * another serve holds it.
   */
  static async take(
    conn: PgConnectOptions,
    nodeId: string,
    log: Logger,
    deadlineMs = PG_CALL_DEADLINE_MS,
  ): Promise<PgNodeLock> {
    const sql = await connectPostgres({
      ...conn,
      max: 1,
      applicationName: poolName(conn.applicationName ?? "odmr-relay", "node"),
      statementTimeoutMs: statementTimeoutFor(deadlineMs),
      keepOpen: true,
    });
    try {
      // A node restarted right after a crash may come up before the server has ended its old
      // session (it does once it sees the connection close): a few tries, START_WAIT_MS apart.
      let pid = await tryLock(sql, nodeId, deadlineMs);
      for (let i = 1; i < START_TRIES && pid === undefined; i++) {
        await new Promise((res) => setTimeout(res, START_WAIT_MS));
        pid = await tryLock(sql, nodeId, deadlineMs);
      }
      if (pid === undefined) {
        throw new NodeBusyError(
          `another serve with hostname "${nodeId}" is already running on this database ` +
            `(it holds the node's lock): every node needs a hostname of its own`,
        );
      }
      return new PgNodeLock(sql, nodeId, pid, log, deadlineMs);
    } catch (err) {
      await sql.end({ timeout: 1 }).catch(() => {});
      throw err;
    }
  }

  private constructor(sql: Sql, nodeId: string, pid: number, log: Logger, deadlineMs: number) {
    this.#sql = sql;
    this.#nodeId = nodeId;
    this.#pid = pid;
    this.#log = log;
    this.#deadlineMs = deadlineMs;
    this.lost = new Promise((resolve) => this.#onLost = resolve);
    this.#timer = setInterval(() => this.#check(), WATCH_EVERY_MS);
    // Never what keeps the process alive (a close cut short by its deadline).
    Deno.unrefTimer(Number(this.#timer));
  }

  /** Whether the lock's session is still the one that took it; if not, takes it again. */
  async #check(): Promise<void> {
    if (this.#isChecking || this.#timer === undefined) return;
    this.#isChecking = true;
    try {
      const [row] = await within(
        this.#sql`SELECT pg_backend_pid() AS pid`,
        this.#deadlineMs,
        "node lock check",
      );
      if (row?.pid === this.#pid) return;
      const pid = await tryLock(this.#sql, this.#nodeId, this.#deadlineMs);
      if (this.#timer === undefined) return;
      if (pid === undefined) {
        this.#stopWatch();
        this.#log.error("node_lock_lost", {
          hostname: this.#nodeId,
          reason: "the connection holding the lock was lost, and another serve with this " +
            "hostname holds it now: every node needs a hostname of its own",
        });
        this.#onLost("node_lock_lost");
        return;
      }
      this.#pid = pid;
      this.#log.warn("node_lock_retaken", { hostname: this.#nodeId });
    } catch (err) {
      // The database unreachable: checked again at the next tick.
      this.#log.warn("node_lock_check_failed", { reason: errorText(err) });
    } finally {
      this.#isChecking = false;
    }
  }

  #stopWatch(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
  }

  /** Stops watching and ends the session (and the lock with it). */
  async release(): Promise<void> {
    this.#stopWatch();
    await this.#sql.end({ timeout: 5 }).catch(() => {});
  }
}

/**
 * Takes the lock of `nodeId` on the session of `sql` (a pool of one connection): its backend
 * pid when taken (or held already by this session), undefined when another session holds it.
 */
async function tryLock(sql: Sql, nodeId: string, deadlineMs: number): Promise<number | undefined> {
  const [row] = await within(
    sql`SELECT pg_try_advisory_lock(hashtextextended(${"odmr-relay node " + nodeId}, 0)) AS ok,
      pg_backend_pid() AS pid`,
    deadlineMs,
    "node lock",
  );
  return row?.ok === true ? Number(row.pid) : undefined;
}
