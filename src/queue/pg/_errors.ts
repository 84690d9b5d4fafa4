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
 * SQLSTATE classes of a server that cannot serve the session: 08 connection exception, 53
 * insufficient resources (too many connections), 57 operator intervention (57P01 shutdown,
 * 57P03 starting up), 58 system error.
 */
const UNAVAILABLE_CLASSES = new Set(["08", "53", "57", "58"]);

/**
 * True for a socket error (ECONNRESET, ECONNREFUSED…: it names its system call), a connection
 * error of postgres.js (CONNECTION_CLOSED, CONNECT_TIMEOUT…), and the server's errors of the
 * classes above; false for anything else (a statement's error, a bug).
 */
export function isConnectionLoss(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const { code, syscall } = err as { code?: unknown; syscall?: unknown };
  if (typeof code !== "string") return false;
  if (err.name === "PostgresError") return UNAVAILABLE_CLASSES.has(code.slice(0, 2));
  return LOST_CONNECTION_CODES.has(code) || typeof syscall === "string";
}
