/**
 * The `fetch` config, as the loader gives it, of the tests that run the customer
 * (src/odmr/customer.ts) inside the test process.
 */
import type { FetchConfig } from "../../src/config/types.ts";

/**
 * alice on 127.0.0.1:`port` without TLS, her password file (`dir`/password) and Maildir in
 * `dir`, domain example.org, polling every minute, on host pi.home; `over` changes any of it.
 */
export function aliceFetchConfig(
  dir: string,
  port: number,
  over: Partial<FetchConfig> = {},
): FetchConfig & { hostname: string } {
  return {
    server: { host: "127.0.0.1", port },
    tls: "none",
    ca: undefined,
    user: "alice",
    passwordFile: `${dir}/password`,
    domains: ["example.org"],
    deliverTo: { kind: "maildir", path: `${dir}/Maildir` },
    intervalMs: 60_000,
    hostname: "pi.home",
    ...over,
  };
}
