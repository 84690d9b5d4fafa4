import { strictEqual as assertEquals } from "node:assert/strict";
import { wantsLineRecords } from "../../src/odmr/line_records.ts";

Deno.test("wantsLineRecords() pays for one line per TLS record only where fetchmail may be on the other end (#13)", async (t) => {
  const rows: {
    why: string;
    configured: boolean | undefined;
    isSecure: boolean;
    saidStartTls: boolean;
    mechanism: string;
    want: boolean;
  }[] = [
    {
      why: "fetchmail: implicit TLS, CRAM-MD5",
      configured: undefined,
      isSecure: true,
      saidStartTls: false,
      mechanism: "CRAM-MD5",
      want: true,
    },
    {
      why: "implicit TLS, PLAIN or LOGIN (fetchmail's other mechanisms)",
      configured: undefined,
      isSecure: true,
      saidStartTls: false,
      mechanism: "plain",
      want: true,
    },
    {
      why: "our fetch over implicit TLS authenticates with SCRAM-SHA-256",
      configured: undefined,
      isSecure: true,
      saidStartTls: false,
      mechanism: "SCRAM-SHA-256",
      want: false,
    },
    {
      why: "a customer that said STARTTLS is not fetchmail in ODMR mode",
      configured: undefined,
      isSecure: true,
      saidStartTls: true,
      mechanism: "CRAM-MD5",
      want: false,
    },
    {
      why: "plain TCP has no records to shape, even when configured",
      configured: true,
      isSecure: false,
      saidStartTls: false,
      mechanism: "CRAM-MD5",
      want: false,
    },
    {
      why: "line_records: true forces it for any TLS customer",
      configured: true,
      isSecure: true,
      saidStartTls: true,
      mechanism: "SCRAM-SHA-256",
      want: true,
    },
    {
      why: "line_records: false turns it off even for a fetchmail-like session",
      configured: false,
      isSecure: true,
      saidStartTls: false,
      mechanism: "CRAM-MD5",
      want: false,
    },
  ];
  for (const r of rows) {
    await t.step(r.why, () => {
      assertEquals(wantsLineRecords(r.configured, r), r.want);
    });
  }
});
