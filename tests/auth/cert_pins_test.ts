/** (#16) Certificate pins for AUTH EXTERNAL: fingerprint forms, one user per pin, and cleanup. */
import { deepStrictEqual as assertEquals, throws } from "node:assert/strict";
import { CredentialStore } from "../../src/auth/store.ts";
import { normalizeFingerprint, PinError } from "../../src/auth/cert_pins.ts";
import { withTempDataDir } from "../_helpers/temp_db.ts";

const HEX = "a1e0df246ce5e4f7717c65d2710bad5f35b9d891659ee938da5c629d3f8c944b";
const CANON = HEX.toUpperCase().match(/../g)!.join(":");

Deno.test("(#16) normalizeFingerprint() accepts SHA-256 hex with or without colons, any case", () => {
  const rows = [
    { input: HEX, want: CANON, why: "bare lower-case hex" },
    { input: CANON.toLowerCase(), want: CANON, why: "openssl form in lower case" },
    { input: ` ${CANON} `, want: CANON, why: "surrounding spaces" },
    { input: HEX.slice(2), want: undefined, why: "31 octets" },
    { input: `${HEX}00`, want: undefined, why: "33 octets" },
    { input: HEX.replace("a", "g"), want: undefined, why: "not hex" },
  ];
  for (const row of rows) assertEquals(normalizeFingerprint(row.input), row.want, row.why);
});

Deno.test("(#16) a fingerprint is pinned for one user; a removed user's pins go with it", async () => {
  await withTempDataDir(async (dir) => {
    const store = CredentialStore.open(dir, { scramIterations: 4096 });
    try {
      await store.addUser("alice", "pw-a", ["example.org"]);
      await store.addUser("bob", "pw-b", ["bob.example"]);
      const pins = store.certificates;
      pins.pin("alice", HEX);
      pins.pin("alice", CANON); // the same pin again: no change
      assertEquals(pins.fingerprintsOf("alice"), [CANON]);
      assertEquals(pins.userOf(HEX), "alice");
      throws(() => pins.pin("bob", CANON), PinError);
      throws(() => pins.pin("nobody", CANON), PinError);
      throws(() => pins.unpin("bob", CANON), PinError);
      store.removeUser("alice");
      await store.addUser("alice", "pw-a2", ["example.org"]);
      assertEquals(pins.fingerprintsOf("alice"), []);
      assertEquals(pins.userOf(CANON), undefined);
    } finally {
      store.close();
    }
  });
});
