/**
 * The metrics page as an outsider reads it: RelayMetrics' exposition parsed by the Prometheus
 * project's own Python parser (Debian's python3-prometheus-client,
 * `prometheus_client.parser.text_string_to_metric_families`), checked against README.md's
 * "Metrics and health" table: every documented series with its type and labels, nothing served
 * that the README does not name, hostile label values read back unchanged, counters that never go
 * down between scrapes and gauges back at 0 once everything has drained.
 */
import { deepStrictEqual as assertEquals, ok as assert } from "node:assert/strict";
import { RelayMetrics } from "../../src/observe/metrics.ts";
import type { DomainQueueStats, UserDomains } from "../../src/observe/metrics.ts";
import { isCi } from "../_helpers/tools.ts";

const README = new URL("../../README.md", import.meta.url);
const NAME = "RelayMetrics read by prometheus_client matches README.md";
/** Python interpreters tried, Debian's first (the package installs there, not in a pyenv). */
const PYTHONS = ["/usr/bin/python3", "python3"];

const PY_PARSE = `
import sys, json
from prometheus_client.parser import text_string_to_metric_families
out = []
for f in text_string_to_metric_families(sys.stdin.read()):
    out.append({"name": f.name, "type": f.type, "help": f.documentation,
                "samples": [[s.name, s.labels, s.value] for s in f.samples]})
print(json.dumps(out))
`;

interface Family {
  name: string;
  type: string;
  help: string;
  samples: [string, Record<string, string>, number][];
}

async function findPython(): Promise<string | undefined> {
  for (const python of PYTHONS) {
    try {
      const out = await new Deno.Command(python, {
        args: ["-c", "import prometheus_client"],
        stdout: "null",
        stderr: "null",
      }).output();
      if (out.success) return python;
    } catch {
      // Not installed here.
    }
  }
  return undefined;
}

async function parse(python: string, text: string): Promise<Family[]> {
  const child = new Deno.Command(python, {
    args: ["-c", PY_PARSE],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const w = child.stdin.getWriter();
  await w.write(new TextEncoder().encode(text));
  await w.close();
  const out = await child.output();
  const dec = new TextDecoder();
  assert(out.success, `prometheus_client refused the exposition:\n${dec.decode(out.stderr)}`);
  return JSON.parse(dec.decode(out.stdout)) as Family[];
}

/** README.md's metric series: family name (without _total, as the parser names it) → type, labels. */
async function documented(): Promise<Map<string, { type: string; labels: string[] }>> {
  const text = await Deno.readTextFile(README);
  const section = text.split("\n## Metrics and health\n")[1]?.split("\n## ")[0] ?? "";
  const out = new Map<string, { type: string; labels: string[] }>();
  for (const line of section.split("\n")) {
    if (!line.startsWith("| `odmr_relay_")) continue;
    const isHistogram = /\|\s*histograms\s*\|\s*$/.test(line);
    for (
      const m of line.split("|")[1]!.matchAll(/`(odmr_relay)?(_?[a-z_]+)(?:\{([a-z_,]*)\})?`/g)
    ) {
      const name = `odmr_relay_${(m[2] as string).replace(/^_/, "")}`;
      const labels = m[3] ? (m[3] as string).split(",") : [];
      const type = isHistogram ? "histogram" : name.endsWith("_total") ? "counter" : "gauge";
      out.set(name.replace(/_total$/, ""), { type, labels: labels.sort() });
    }
  }
  // Named in the prose below the table and under "Deploying".
  out.set("odmr_relay_tls_cert_expiry_timestamp_seconds", { type: "gauge", labels: [] });
  return out;
}

/** Label names a family's samples carry (histograms' `le` left out). */
function labelNames(f: Family): string[] {
  const names = new Set<string>();
  for (const [, labels] of f.samples) for (const k of Object.keys(labels)) names.add(k);
  names.delete("le");
  return [...names].sort();
}

const HOSTILE_USER = 'al"ice\\\nx{y="z"}';
const HOSTILE_DOMAIN = 'ev"il\\.example\n# TYPE x counter';

function fixture() {
  const users: UserDomains[] = [{ name: HOSTILE_USER, domains: ["example.org"] }];
  let stats: DomainQueueStats[] = [
    { domain: "example.org", route: "atrn", messages: 2, bytes: 20, oldestReceivedAt: 0 },
    { domain: HOSTILE_DOMAIN, route: "mx", messages: 1, bytes: 5, oldestReceivedAt: 0 },
  ];
  const metrics = new RelayMetrics({
    users: () => users,
    domainStats: () => stats,
    now: () => 1_000_000,
  });
  return { metrics, drain: () => (stats = []) };
}

const python = await findPython();
const ignore = python === undefined && !isCi();
if (ignore) {
  // deno-lint-ignore no-console -- the printed reason is the point of a skip (docs/architecture.md "Conventions")
  console.log(`skip: ${NAME}: python3-prometheus-client not installed`);
}

Deno.test({ name: NAME, ignore }, async (t) => {
  assert(
    python !== undefined,
    "python3-prometheus-client not installed, and CI=true forbids skipping",
  );
  const { metrics, drain } = fixture();
  metrics.smtp.messageQueued({ domains: ["example.org"], bytes: 10, commitSeconds: 0.001 });
  metrics.smtp.rcptRejected("relay_denied");
  metrics.smtp.messageRefused("size");
  metrics.odmr.authFailure("PLAIN");
  metrics.odmr.atrn(HOSTILE_USER, "250");
  metrics.odmr.delivered("example.org");
  metrics.odmr.drainFinished(HOSTILE_USER, 1);
  metrics.outbound.delivery("deferred");
  metrics.maintenance({ expiredRecipients: 1, dsnQueued: 1, dsnDropped: 0 });
  metrics.tlsCertificate(new Date(Date.UTC(2027, 0, 1)));
  metrics.connectionOpened("smtp");
  metrics.connectionOpened("odmr");
  const first = await parse(python!, await metrics.expose());
  const byName = new Map(first.map((f) => [f.name, f]));
  const docs = await documented();

  await t.step("every README.md series is served with its type and labels", () => {
    for (const [name, want] of docs) {
      const f = byName.get(name);
      assert(f !== undefined, `${name} is in README.md but not served`);
      assertEquals([name, f.type, labelNames(f)], [name, want.type, want.labels]);
      assert(f.help.length > 0, `${name} has no HELP`);
    }
  });

  await t.step("every served series is named in README.md", () => {
    const undocumented = first.map((f) => f.name).filter((n) => !docs.has(n));
    assertEquals(undocumented, []);
  });

  await t.step("hostile label values read back unchanged", () => {
    const users = byName.get("odmr_relay_atrn")!.samples.map(([, l]) => l["user"]);
    assert(users.includes(HOSTILE_USER), JSON.stringify(users));
    const domains = byName.get("odmr_relay_outbound_queue_messages")?.samples.map(([, l]) =>
      l["domain"]
    );
    assertEquals(domains, [HOSTILE_DOMAIN]);
  });

  await t.step("counters never go down, gauges read 0 once drained", async () => {
    metrics.connectionClosed("smtp");
    metrics.connectionClosed("odmr");
    drain();
    const second = await parse(python!, await metrics.expose());
    const key = (n: string, l: Record<string, string>) => `${n}${JSON.stringify(l)}`;
    const after = new Map(second.flatMap((f) => f.samples.map(([n, l, v]) => [key(n, l), v])));
    for (const f of first.filter((f) => f.type === "counter" || f.type === "histogram")) {
      for (const [n, l, v] of f.samples) {
        if (n.endsWith("_created")) continue;
        const now = after.get(key(n, l));
        assert(now !== undefined && now >= v, `${key(n, l)}: ${v} then ${now}`);
      }
    }
    const gauge = (name: string) => second.find((f) => f.name === name)!.samples;
    assertEquals(gauge("odmr_relay_connections").map(([, , v]) => v), [0, 0]);
    assertEquals(gauge("odmr_relay_queue_messages"), [
      ["odmr_relay_queue_messages", { domain: "example.org" }, 0],
    ]);
    assertEquals(gauge("odmr_relay_queue_oldest_seconds").map(([, , v]) => v), [0]);
    assertEquals(gauge("odmr_relay_outbound_queue_messages"), []);
  });
});
