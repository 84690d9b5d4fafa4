/**
 * A signal while `fetch` is still opening its connection to the provider (a slow TLS
 * handshake): it exits 0 as the README says for SIGTERM/SIGINT, and says nothing on that
 * connection afterwards (no AUTH, no ATRN). `fetch --once` opens that connection before it loads
 * the rest of fetch (src/cli/main.ts); the looping fetch opens it in its poll. (#13 review)
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import net from "node:net";
import YAML from "yaml";
import { startScriptedProvider } from "../_helpers/scripted_provider.ts";
import { makeSelfSigned } from "../_helpers/self_signed.ts";

const MAIN = new URL("../../main.ts", import.meta.url).pathname;

for (const [once, signal] of [[true, "SIGTERM"], [true, "SIGINT"], [false, "SIGTERM"]] as const) {
  Deno.test(`fetch${once ? " --once" : ""}: ${signal} during a slow TLS connect exits 0, no AUTH or ATRN after it (#13)`, async () => {
    const dir = await Deno.makeTempDir({ prefix: "odmr-fetch-signal-" });
    const cert = await makeSelfSigned(dir, "a", { dnsName: "provider.test", days: 30 });
    const provider = await startScriptedProvider({
      user: "alice",
      password: "pw",
      tls: { cert: await Deno.readTextFile(cert.cert), key: await Deno.readTextFile(cert.key) },
      implicitTls: true,
    });
    // Accepts at once and holds the bytes: the handshake waits until `forward()`.
    const sockets: net.Socket[] = [];
    let connected: () => void = () => {};
    const hasConnection = new Promise<void>((r) => connected = r);
    let forward: () => void = () => {};
    const proxy = net.createServer((s) => {
      sockets.push(s);
      s.pause();
      s.on("error", () => {});
      forward = () => {
        const up = net.connect(provider.port, "127.0.0.1");
        up.on("error", () => {});
        sockets.push(up);
        s.pipe(up).pipe(s);
        s.resume();
      };
      connected();
    });
    await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", () => r()));
    try {
      await Deno.writeTextFile(`${dir}/pw`, "pw\n", { mode: 0o600 });
      await Deno.chmod(`${dir}/pw`, 0o600);
      await Deno.writeTextFile(
        `${dir}/cfg.yaml`,
        YAML.stringify({
          hostname: "pi.test",
          data_dir: `${dir}/data`,
          fetch: {
            server: `127.0.0.1:${(proxy.address() as net.AddressInfo).port}`,
            tls: "implicit",
            ca: cert.cert,
            tls_server_name: "provider.test",
            user: "alice",
            password_file: `${dir}/pw`,
            domains: ["example.org"],
            deliver_to: `maildir:${dir}/Maildir`,
          },
        }),
      );
      const child = new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          MAIN,
          "fetch",
          ...(once ? ["--once"] : []),
          "--config",
          `${dir}/cfg.yaml`,
        ],
        stdin: "null",
        stdout: "null",
        stderr: "piped",
      }).spawn();
      await hasConnection;
      child.kill(signal);
      // The handshake may finish after the signal: nothing may be said on it then.
      const late = setTimeout(() => forward(), 300);
      const out = await child.output();
      clearTimeout(late);
      assertEquals(
        { code: out.code, signal: out.signal },
        { code: 0, signal: null },
        new TextDecoder().decode(out.stderr),
      );
      assertEquals(
        { auth: provider.sessions[0]?.authMechanism, atrn: provider.sessions[0]?.atrnLine },
        { auth: undefined, atrn: undefined },
      );
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => proxy.close(() => r()));
      await provider.close();
      await Deno.remove(dir, { recursive: true });
    }
  });
}
