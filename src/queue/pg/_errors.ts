/**
 * Which failures of a PostgreSQL call mean that the connection or the server went away (a
 * retry on this pool can only wait for the reconnect), as opposed to a statement or a write
 * of ours that failed on a working connection.
 */

/** postgres.js's own errors for a connection it lost or could not open. */
const LOST_CONNECTION_CODES = new Set([
  "CONNECTION_CLOSED",
  "CONNECTION_DESTROYED",
  "CONNECTION_ENDED",
  "CONNECT_TIMEOUT",
]);

/**
 * The server's answers that mean it cannot serve the session, not that one statement failed:
 * class 08 (connection exception), 57P01-57P05 (shutdown, crash, starting up, database
 * dropped, idle session timeout), 53300 (too many connections), 53100 (disk full), class 58
 * (system error). Not 57014 (a cancelled statement) nor 53200 (out of memory): one write can
 * cause those.
 */
function isUnavailable(sqlstate: string): boolean {
  return sqlstate.startsWith("08") || sqlstate.startsWith("57P") || sqlstate.startsWith("58") ||
    sqlstate === "53300" || sqlstate === "53100";
}

/**
 * True for a socket error (ECONNRESET, ECONNREFUSED…: it names its system call), a connection
 * error of postgres.js (CONNECTION_CLOSED, CONNECT_TIMEOUT…), and the server's answers above;
 * false for anything else (a statement's error, a bug).
 */
export function isConnectionLoss(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const { code, syscall } = err as { code?: unknown; syscall?: unknown };
  if (typeof code !== "string") return false;
  if (err.name === "PostgresError") return isUnavailable(code);
  return LOST_CONNECTION_CODES.has(code) || typeof syscall === "string";
}
