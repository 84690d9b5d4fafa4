/**
 * The systemd units in contrib/systemd pass `systemd-analyze verify` (with the binary path
 * pointed at a stand-in executable, since tests do not install the program), and keep the
 * hardening the README promises.
 */
import { deepStrictEqual as assertEquals, match as assertMatch } from "node:assert/strict";
import { toolTest } from "../_helpers/tools.ts";
import { REPO_ROOT } from "../_helpers/server_process.ts";

const UNITS = [
  "odmr-relay-serve.service",
  "odmr-relay-fetch.service",
  "odmr-relay-fetch-once.service",
  "odmr-relay-fetch.timer",
];
const BINARY = "/usr/local/bin/odmr-relay";

await toolTest(
  "contrib/systemd units pass systemd-analyze verify",
  ["systemd-analyze"],
  async () => {
    const dir = await Deno.makeTempDir({ prefix: "odmr-units-" });
    try {
      const stub = `${dir}/odmr-relay`;
      await Deno.writeTextFile(stub, "#!/bin/sh\nexit 0\n", { mode: 0o755 });
      for (const name of UNITS) {
        const text = await Deno.readTextFile(`${REPO_ROOT}contrib/systemd/${name}`);
        await Deno.writeTextFile(`${dir}/${name}`, text.replaceAll(BINARY, stub));
      }
      const out = await new Deno.Command("systemd-analyze", {
        args: ["verify", "--man=no", ...UNITS.map((u) => `${dir}/${u}`)],
        stdout: "piped",
        stderr: "piped",
        env: { SYSTEMD_LOG_LEVEL: "warning" },
      }).output();
      const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
      // Warnings about the host itself (no running systemd in a container) are not about our units.
      const ours = text.split("\n").filter((l) => UNITS.some((u) => l.includes(u)));
      assertEquals(ours, [], text);
      assertEquals(out.code, 0, text);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

Deno.test("the serve unit runs unprivileged with only the capability to bind ports below 1024", async () => {
  const text = await Deno.readTextFile(`${REPO_ROOT}contrib/systemd/odmr-relay-serve.service`);
  for (
    const line of [
      /^AmbientCapabilities=CAP_NET_BIND_SERVICE$/m,
      /^CapabilityBoundingSet=CAP_NET_BIND_SERVICE$/m,
      /^NoNewPrivileges=yes$/m,
      /^ProtectSystem=strict$/m,
      /^StateDirectory=odmr-relay$/m,
      /^DynamicUser=yes$/m,
      /^ExecStart=\/usr\/local\/bin\/odmr-relay serve --config /m,
      // SIGHUP reloads the certificate (#11): `systemctl reload` must send it.
      /^ExecReload=\/bin\/kill -HUP \$MAINPID$/m,
    ]
  ) assertMatch(text, line);
});
