/**
 * A config that lists one address and port for two listeners can never start: it is a
 * configuration error (CONTRACT "Exit codes": 2, the message naming the file and the key path),
 * found when the config loads, so `check-config` says so. Before, the config passed and `serve`
 * failed to bind the second one ("Address already in use", exit 1), which sends an operator
 * looking for another process. Port 0 (any free port) never clashes; neither do addresses of
 * different families (whether `[::]` also takes IPv4 depends on the system: README "Deploying").
 * The real process.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { runMain } from "../_helpers/server_process.ts";

const P = 46_025;

const CASES: { yaml: string; clash?: string }[] = [
  {
    yaml: `smtp: {listen: ["127.0.0.1:${P}", "127.0.0.1:${P}"]}`,
    clash: `smtp.listen[1] is "127.0.0.1:${P}", which smtp.listen[0] takes already`,
  },
  {
    yaml: `smtp: {listen: ["127.0.0.1:${P}"]}\nodmr: {listen: ["127.0.0.1:${P}"]}`,
    clash: `odmr.listen[0] is "127.0.0.1:${P}", which smtp.listen[0] takes already`,
  },
  {
    yaml: `smtp: {listen: ["0.0.0.0:${P}"]}\nodmr: {listen: [{address: "127.0.0.1:${P}"}]}`,
    clash: `odmr.listen[0] is "127.0.0.1:${P}", which smtp.listen[0] takes already`,
  },
  {
    yaml: `smtp: {listen: ["[::1]:${P}"]}\nsubmission: {listen: ["[::]:${P}"]}`,
    clash: `submission.listen[0] is "[::]:${P}", which smtp.listen[0] takes already`,
  },
  {
    yaml: `smtp: {listen: ["127.0.0.1:${P}"]}\nmetrics: {listen: "127.0.0.1:${P}"}`,
    clash: `metrics.listen is "127.0.0.1:${P}", which smtp.listen[0] takes already`,
  },
  { yaml: `smtp: {listen: ["127.0.0.1:0", "127.0.0.1:0"]}\nodmr: {listen: ["127.0.0.1:0"]}` },
  { yaml: `smtp: {listen: ["127.0.0.1:${P}"]}\nodmr: {listen: ["127.0.0.2:${P}"]}` },
  { yaml: `smtp: {listen: ["0.0.0.0:${P}"]}\nodmr: {listen: ["[::1]:${P}"]}` },
];

Deno.test("one address and port for two listeners is a config error naming both (exit 2)", async (t) => {
  const dir = await Deno.makeTempDir({ prefix: "odmr-clash-" });
  try {
    for (const { yaml, clash } of CASES) {
      await t.step(yaml.replaceAll("\n", " "), async () => {
        await Deno.writeTextFile(`${dir}/config.yaml`, `${yaml}\n`);
        const r = await runMain(["check-config", "--config", `${dir}/config.yaml`]);
        assertEquals({ code: r.code, stderr: r.stderr }, {
          code: clash === undefined ? 0 : 2,
          stderr: clash === undefined
            ? ""
            : `error: Cannot load config "${dir}/config.yaml": ${clash}: ` +
              "each address and port can be listened on once\n",
        });
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
