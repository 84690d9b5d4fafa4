/**
 * Conn: one TCP (or TLS) connection as a pull source of bytes plus a writer, whatever role
 * the SMTP layer plays on it (the interface: conn_types.ts). A NativeConn on Deno.TcpConn
 * (native_conn.ts) where no TLS can follow, else a SocketConn on node:net/node:tls
 * (socket_conn.ts). Why: docs/architecture.md "Decisions and why".
 */
export { connect } from "./connect.ts";
export type { ConnectTarget } from "./connect.ts";

export * from "./conn_types.ts";
export { NativeConn } from "./native_conn.ts";
export { SocketConn } from "./socket_conn.ts";
