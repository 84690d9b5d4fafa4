/** GET /healthz on a metrics port over plain TCP, as a monitor would send it. */

const enc = new TextEncoder();

/** The status line and body of GET /healthz, e.g. `HTTP/1.1 503 Service Unavailable disk full`. */
export async function healthz(port: number): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(enc.encode("GET /healthz HTTP/1.1\r\nhost: test\r\n\r\n"));
    let text = "";
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      text += new TextDecoder().decode(buf.subarray(0, n));
    }
    const [head = "", body = ""] = text.split("\r\n\r\n");
    return `${head.split("\r\n")[0]} ${body.trim()}`;
  } finally {
    conn.close();
  }
}
