/**
 * Whether the provider writes one line per TLS record in the reversed phase. fetchmail's ODMR
 * relay over implicit TLS reads one line and then waits on the raw socket, so a second line in
 * the same record is never seen and the session hangs (docs/QUIRKS.md). Paying for that costs
 * about half the drain speed, so by default only a session that looks like fetchmail pays.
 */

/** What the customer did before ATRN, as far as the choice depends on it. */
export interface CustomerSigns {
  /** The session is under TLS now. */
  readonly isSecure: boolean;
  /** The customer said STARTTLS (fetchmail never does in ODMR mode: implicit TLS only). */
  readonly saidStartTls: boolean;
  /** The SASL mechanism it authenticated with. */
  readonly mechanism: string;
}

/**
 * The SASL mechanisms fetchmail's SMTP AUTH can use (it prefers CRAM-MD5, which we always
 * offer). A customer authenticating otherwise (SCRAM-SHA-256, as our `fetch` does) is not it.
 */
const FETCHMAIL_MECHANISMS: ReadonlySet<string> = new Set(["CRAM-MD5", "PLAIN", "LOGIN"]);

/**
 * One line per TLS record? `configured` (the listener's `line_records`) wins when set;
 * absent, only a TLS session whose customer never said STARTTLS and authenticated with one
 * of fetchmail's mechanisms gets it. Without TLS there are no records to shape.
 */
export function wantsLineRecords(configured: boolean | undefined, signs: CustomerSigns): boolean {
  if (!signs.isSecure) return false;
  if (configured !== undefined) return configured;
  return !signs.saidStartTls && FETCHMAIL_MECHANISMS.has(signs.mechanism.toUpperCase());
}
