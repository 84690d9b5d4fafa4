/**
 * A listener that cannot be bound stops `serve` with exit 1 (CONTRACT: runtime failure) and one
 * `startup_failed` line naming the address the way the config and the `listening` lines write
 * it: `[::1]:PORT`, not `::1:PORT`, which names no address at all. The real process, each
 * listener kind on an IPv6 loopback port this test holds.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { REPO_ROOT } from "../_helpers/server_process.ts";

Deno.test("serve names a busy IPv6 listener as [::1]:PORT and exits 1", async (t) => {
  const busy = Deno.listen({ hostname: "::1", port: 0 });
  const port = (busy.addr as Deno.NetAddr).port;
  const dir = await Deno.makeTempDir({ prefix: "odmr-busy-" });
  try {
    const cases: { proto: string; yaml: string }[] = [
      { proto: "smtp", yaml: `smtp: {listen: ["[::1]:${port}"]}\nodmr: {listen: []}\n` },
      { proto: "odmr", yaml: `smtp: {listen: []}\nodmr: {listen: ["[::1]:${port}"]}\n` },
      {
        proto: "metrics",
        yaml: `smtp: {listen: ["127.0.0.1:0"]}\nodmr: {listen: []}\n` +
          `metrics: {listen: "[::1]:${port}"}\n`,
      },
    ];
    for (const { proto, yaml } of cases) {
      await t.step(proto, async () => {
        await Deno.writeTextFile(`${dir}/config.yaml`, `data_dir: ./data\n${yaml}`);
        const out = await new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", `${REPO_ROOT}main.ts`, "serve", "--config", `${dir}/config.yaml`],
          stdin: "null",
          stdout: "piped",
          stderr: "piped",
          env: { NO_COLOR: "1" },
        }).output();
        const failed = new TextDecoder().decode(out.stderr).split("\n")
          .filter((l) => l.includes("event=startup_failed"))
          .map((l) => /reason="(Cannot listen on \S+ \S+): /.exec(l)?.[1]);
        assertEquals({ code: out.code, failed }, {
          code: 1,
          failed: [`Cannot listen on ${proto} [::1]:${port}`],
        });
      });
    }
  } finally {
    busy.close();
    await Deno.remove(dir, { recursive: true });
  }
});
