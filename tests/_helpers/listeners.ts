/**
 * How many sockets listen on a TCP address, from Linux's /proc/net/tcp. Postfix's master and
 * smtp-sink bind with SO_REUSEPORT: a second one started on an address the first holds binds
 * too, and the kernel then spreads connections over both. A helper that started one on a
 * spare port checks with this that it listens there alone (tests/_helpers/smtp_sink.ts,
 * tests/_helpers/postfix.ts).
 */

/** Listening TCP sockets on IPv4 `host`:`port`, or undefined where /proc cannot tell. */
export async function tcpListeners(host: string, port: number): Promise<number | undefined> {
  try {
    return countListening(await Deno.readTextFile("/proc/net/tcp"), host, port);
  } catch {
    return undefined;
  }
}

/** Rows of a /proc/net/tcp table in state LISTEN (0A) whose local address is `host`:`port`. */
export function countListening(table: string, host: string, port: number): number {
  const want = `${procHex(host)}:${port.toString(16).toUpperCase().padStart(4, "0")}`;
  let n = 0;
  for (const line of table.split("\n").slice(1)) {
    const fields = line.trim().split(/\s+/);
    if (fields[1] === want && fields[3] === "0A") n++;
  }
  return n;
}

/** An IPv4 address as /proc/net/tcp writes it: the 32-bit value in host (little-endian) order. */
function procHex(host: string): string {
  return host.split(".").map((b) => Number(b).toString(16).toUpperCase().padStart(2, "0"))
    .reverse().join("");
}
