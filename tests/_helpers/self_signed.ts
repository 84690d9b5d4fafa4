/**
 * Self-signed certificates made with the openssl CLI for certificate-handling tests: any
 * common name, lifetime and key type; written as `<name>.pem` / `<name>.key` in `dir`.
 */

/** Paths of one certificate and its key. */
export interface CertFiles {
  readonly cert: string;
  readonly key: string;
}

/**
 * Makes a self-signed certificate for `dnsName` (and 127.0.0.1 unless `withoutIp`) valid
 * `days` days (EC P-256 by default).
 */
export async function makeSelfSigned(
  dir: string,
  name: string,
  opts: { dnsName: string; days: number; rsa?: boolean; withoutIp?: boolean },
): Promise<CertFiles> {
  const cert = `${dir}/${name}.pem`;
  const key = `${dir}/${name}.key`;
  const keyArgs = opts.rsa
    ? ["-newkey", "rsa:2048"]
    : ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"];
  const out = await new Deno.Command("openssl", {
    args: [
      "req",
      "-x509",
      ...keyArgs,
      "-nodes",
      "-keyout",
      key,
      "-out",
      cert,
      "-subj",
      `/CN=${opts.dnsName}`,
      "-addext",
      `subjectAltName=DNS:${opts.dnsName}${opts.withoutIp ? "" : ",IP:127.0.0.1"}`,
      "-days",
      String(opts.days),
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) throw new Error(`openssl req failed: ${new TextDecoder().decode(out.stderr)}`);
  return { cert, key };
}

/** Two pairs for `mx.test` and the live files a server is configured with. */
export interface RenewalFiles {
  /** The pair in use first (30 days), copied to `live`. */
  readonly a: CertFiles;
  /** Its renewal (60 days), for the test to copy over `live`. */
  readonly b: CertFiles;
  /** `live.pem` / `live.key` in `dir`: what the config names. */
  readonly live: CertFiles;
}

/** A certificate renewal in `dir` (the certbot case): pairs `a` and `b`, `live` holding `a`. */
export async function makeRenewal(dir: string): Promise<RenewalFiles> {
  const a = await makeSelfSigned(dir, "a", { dnsName: "mx.test", days: 30 });
  const b = await makeSelfSigned(dir, "b", { dnsName: "mx.test", days: 60 });
  const live = { cert: `${dir}/live.pem`, key: `${dir}/live.key` };
  await Deno.copyFile(a.cert, live.cert);
  await Deno.copyFile(a.key, live.key);
  return { a, b, live };
}
