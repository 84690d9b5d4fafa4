/**
 * Two `serve` nodes on one PostgreSQL database, as the multi-node e2e tests run them: node A
 * (`mx-a.test`) and node B (`mx-b.test`), each with a data directory and config of its own,
 * sharing a fresh database of the test's cluster.
 */
import type { PostgresCluster } from "./postgres.ts";
import { type CustomerResult, runScriptedCustomer } from "./scripted_customer.ts";
import { removeTestFiles, type ServerProcess, startServer } from "./server_process.ts";
import { queueIdOf, submit } from "./smtp_submit.ts";

/** Config sections beside `hostname`; `queue` keys join the PostgreSQL backend's. */
export interface NodeSections {
  readonly queue?: Record<string, unknown>;
  readonly [section: string]: unknown;
}

/** One node's config on the database at `url`. */
export function postgresNodeConfig(
  name: string,
  url: string,
  sections: NodeSections = {},
): Record<string, unknown> {
  return {
    hostname: name,
    ...sections,
    queue: { backend: "postgres", postgres: { url }, ...sections.queue },
  };
}

/**
 * Creates the database `db`, starts node A then node B on it with `sections`, runs `fn`, and
 * stops and removes both whatever happens (a node `fn` killed is only removed).
 */
export async function withTwoNodes(
  pg: PostgresCluster,
  db: string,
  sections: NodeSections,
  fn: (a: ServerProcess, b: ServerProcess) => Promise<void>,
): Promise<void> {
  const url = await pg.createDatabase(db);
  const a = await startServer({ config: postgresNodeConfig("mx-a.test", url, sections) });
  let b: ServerProcess | undefined;
  try {
    b = await startServer({ config: postgresNodeConfig("mx-b.test", url, sections) });
    await fn(a, b);
  } finally {
    await a.stop();
    await b?.stop();
    await removeTestFiles(a);
    if (b !== undefined) await removeTestFiles(b);
  }
}

/**
 * Waits until `node` accepts mail for `domain` on its MX port: RCPT is refused until the
 * node's copy of the users has the domain (NOTIFY: at once). Each try that gets through leaves
 * one probe message (`Subject: probe`) in the queue; returns its queue id. Bounded (10 s).
 */
export async function waitUntilAccepted(node: ServerProcess, domain: string): Promise<string> {
  let last: string[] = [];
  for (let i = 0; i < 100; i++) {
    const r = await submit({
      port: node.smtp[0]?.port ?? 0,
      from: "probe@example.net",
      to: [`probe@${domain}`],
      body: new TextEncoder().encode("Subject: probe\r\n\r\nprobe\r\n"),
    });
    const id = queueIdOf(r.final);
    if (id !== undefined) return id;
    last = r.replies;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(
    `node never accepted mail for ${domain}: ${last.join(" | ")}\n${node.logs().slice(-3000)}`,
  );
}

/**
 * A customer on the ODMR port `port` that logs in as `user` with CRAM-MD5 and sends
 * `ATRN example.org`; `silentAfterAtrn` then holds the lease without reading a message.
 */
export function atrnExampleOrg(
  port: number,
  user: string,
  password: string,
  hold?: { readonly silentAfterAtrn: true; readonly timeoutMs: number },
): Promise<CustomerResult> {
  return runScriptedCustomer({
    port,
    auth: { mechanism: "CRAM-MD5", user, password },
    atrn: "example.org",
    ...hold,
  });
}
