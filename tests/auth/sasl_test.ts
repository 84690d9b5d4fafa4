import { deepStrictEqual as assertEquals, equal, ok, rejects, throws } from "node:assert/strict";
import { chooseMechanism, createSaslClient, SaslClientError } from "../../src/auth/sasl_client.ts";
import {
  createSaslServer,
  parseSaslMechanismName,
  SASL_MECHANISMS,
  type SaslMechanismName,
  type SaslStep,
} from "../../src/auth/sasl_server.ts";
import type { CredentialStore } from "../../src/auth/store.ts";
import { withStore } from "./_fixtures.ts";

const enc = new TextEncoder();
const dec = new TextDecoder();
const HOST = "relay.example.net";

/** Runs a whole exchange between our client and our server, as the two sessions would. */
async function converse(
  store: CredentialStore,
  mech: SaslMechanismName,
  user: string,
  password: string,
): Promise<SaslStep> {
  const server = createSaslServer(mech, { store, hostname: HOST });
  const client = createSaslClient(mech, { user, password });
  let step = await server.start(client.initialResponse());
  for (let i = 0; i < 5 && step.kind === "challenge"; i++) {
    step = await server.next(await client.next(step.data));
  }
  if (step.kind === "success") {
    if (step.data !== undefined) equal((await client.next(step.data)).length, 0);
    client.verifyFinal();
  }
  return step;
}

async function withAlice(body: (store: CredentialStore) => Promise<void>) {
  await withStore(async (store) => {
    await store.addUser("alice", "correct horse", ["example.org"]);
    await body(store);
  });
}

for (const mech of SASL_MECHANISMS) {
  Deno.test(`${mech} succeeds with the right password`, async () => {
    await withAlice(async (store) => {
      const step = await converse(store, mech, "alice", "correct horse");
      equal(step.kind, "success");
      ok(step.kind === "success" && step.user === "alice");
    });
  });

  Deno.test(`${mech} fails with a wrong password and an unknown user alike`, async () => {
    await withAlice(async (store) => {
      assertEquals(await converse(store, mech, "alice", "wrong horse"), {
        kind: "failure",
        reason: "credentials",
        user: "alice",
      });
      assertEquals(await converse(store, mech, "mallory", "correct horse"), {
        kind: "failure",
        reason: "credentials",
        user: "mallory",
      });
    });
  });

  Deno.test(`${mech} refuses non-UTF-8 input, then answers malformed to any further step`, async () => {
    await withAlice(async (store) => {
      const server = createSaslServer(mech, { store, hostname: HOST });
      const first = await server.start(undefined);
      ok(first.kind === "challenge");
      assertEquals(await server.next(Uint8Array.of(0xff, 0xfe)), {
        kind: "failure",
        reason: "malformed",
      });
      assertEquals(await server.next(enc.encode("x")), { kind: "failure", reason: "malformed" });
    });
  });
}

Deno.test("CRAM-MD5 sends a unique <random.timestamp@hostname> challenge", async () => {
  await withAlice(async (store) => {
    const a = await createSaslServer("CRAM-MD5", { store, hostname: HOST }).start(undefined);
    const b = await createSaslServer("CRAM-MD5", { store, hostname: HOST }).start(undefined);
    ok(a.kind === "challenge" && b.kind === "challenge");
    const re = new RegExp(`^<[0-9a-f]{32}\\.\\d+@${HOST.replaceAll(".", "\\.")}>$`);
    ok(re.test(dec.decode(a.data)), dec.decode(a.data));
    ok(dec.decode(a.data) !== dec.decode(b.data));
  });
});

Deno.test("CRAM-MD5 refuses an initial response as malformed", async () => {
  await withAlice(async (store) => {
    const server = createSaslServer("CRAM-MD5", { store, hostname: HOST });
    assertEquals(await server.start(enc.encode("alice 00")), {
      kind: "failure",
      reason: "malformed",
    });
  });
});

Deno.test("CRAM-MD5 refuses a malformed answer", async (t) => {
  await withAlice(async (store) => {
    for (const answer of ["alice", "alice 123", "alice  " + "0".repeat(32), "0".repeat(33)]) {
      await t.step(JSON.stringify(answer), async () => {
        const server = createSaslServer("CRAM-MD5", { store, hostname: HOST });
        await server.start(undefined);
        assertEquals(await server.next(enc.encode(answer)), {
          kind: "failure",
          reason: "malformed",
        });
      });
    }
  });
});

Deno.test("CRAM-MD5 refuses a replayed answer to an old challenge", async () => {
  await withAlice(async (store) => {
    const client = createSaslClient("CRAM-MD5", { user: "alice", password: "correct horse" });
    const old = createSaslServer("CRAM-MD5", { store, hostname: HOST });
    const oldChallenge = await old.start(undefined);
    if (oldChallenge.kind !== "challenge") throw new Error("no challenge");
    const answer = await client.next(oldChallenge.data);
    equal((await old.next(answer)).kind, "success");
    const fresh = createSaslServer("CRAM-MD5", { store, hostname: HOST });
    await fresh.start(undefined);
    assertEquals(await fresh.next(answer), {
      kind: "failure",
      reason: "credentials",
      user: "alice",
    });
  });
});

Deno.test("PLAIN accepts authzid equal to authcid and refuses another authzid", async () => {
  await withAlice(async (store) => {
    const same = createSaslServer("PLAIN", { store, hostname: HOST });
    equal(
      (await same.start(enc.encode("alice\0alice\0correct horse"))).kind,
      "success",
    );
    const other = createSaslServer("PLAIN", { store, hostname: HOST });
    assertEquals(await other.start(enc.encode("bob\0alice\0correct horse")), {
      kind: "failure",
      reason: "credentials",
      user: "alice",
    });
  });
});

Deno.test("PLAIN without an initial response sends an empty challenge first", async () => {
  await withAlice(async (store) => {
    const server = createSaslServer("PLAIN", { store, hostname: HOST });
    assertEquals(await server.start(undefined), { kind: "challenge", data: new Uint8Array(0) });
    equal((await server.next(enc.encode("\0alice\0correct horse"))).kind, "success");
  });
});

Deno.test("PLAIN refuses malformed messages", async (t) => {
  await withAlice(async (store) => {
    const rows = [
      { what: "empty", input: "" },
      { what: "one NUL", input: "alice\0correct horse" },
      { what: "three NULs", input: "\0alice\0correct\0horse" },
      { what: "empty authcid", input: "\0\0correct horse" },
      { what: "empty password", input: "\0alice\0" },
      { what: "authcid over 255 octets", input: `\0${"a".repeat(256)}\0pw` },
    ];
    for (const row of rows) {
      await t.step(row.what, async () => {
        const server = createSaslServer("PLAIN", { store, hostname: HOST });
        assertEquals(await server.start(enc.encode(row.input)), {
          kind: "failure",
          reason: "malformed",
        });
      });
    }
  });
});

Deno.test("LOGIN prompts Username: then Password: and takes the user as initial response", async () => {
  await withAlice(async (store) => {
    const server = createSaslServer("LOGIN", { store, hostname: HOST });
    assertEquals(await server.start(undefined), {
      kind: "challenge",
      data: enc.encode("Username:"),
    });
    assertEquals(await server.next(enc.encode("alice")), {
      kind: "challenge",
      data: enc.encode("Password:"),
    });
    equal((await server.next(enc.encode("correct horse"))).kind, "success");
    const withIr = createSaslServer("LOGIN", { store, hostname: HOST });
    assertEquals(await withIr.start(enc.encode("alice")), {
      kind: "challenge",
      data: enc.encode("Password:"),
    });
    equal((await withIr.next(enc.encode("correct horse"))).kind, "success");
  });
});

Deno.test("LOGIN refuses an empty user name as malformed", async () => {
  await withAlice(async (store) => {
    const server = createSaslServer("LOGIN", { store, hostname: HOST });
    await server.start(undefined);
    assertEquals(await server.next(new Uint8Array(0)), { kind: "failure", reason: "malformed" });
  });
});

/** Runs SCRAM up to client-final and lets `tamper` change it before the server sees it. */
async function scramWithTamperedFinal(
  store: CredentialStore,
  tamper: (clientFinal: string) => string,
): Promise<SaslStep> {
  const server = createSaslServer("SCRAM-SHA-256", { store, hostname: HOST });
  const client = createSaslClient("SCRAM-SHA-256", { user: "alice", password: "correct horse" });
  const serverFirst = await server.start(client.initialResponse());
  if (serverFirst.kind !== "challenge") throw new Error("no server-first");
  const clientFinal = dec.decode(await client.next(serverFirst.data));
  return server.next(enc.encode(tamper(clientFinal)));
}

Deno.test("SCRAM-SHA-256 refuses a tampered nonce", async () => {
  await withAlice(async (store) => {
    const step = await scramWithTamperedFinal(
      store,
      // The last character changed for certain (a nonce ending in X stayed the same: 1 in 64).
      (f) =>
        f.replace(
          /,r=([^,]*)/,
          (_m, r: string) => `,r=${r.slice(0, -1)}${r.endsWith("X") ? "Y" : "X"}`,
        ),
    );
    assertEquals(step, { kind: "failure", reason: "malformed" });
  });
});

Deno.test("SCRAM-SHA-256 refuses a tampered proof", async () => {
  await withAlice(async (store) => {
    const step = await scramWithTamperedFinal(
      store,
      (f) => f.replace(/,p=(.)/, (_m, c: string) => `,p=${c === "A" ? "B" : "A"}`),
    );
    assertEquals(step, { kind: "failure", reason: "credentials", user: "alice" });
  });
});

Deno.test("SCRAM-SHA-256 refuses p= channel binding as unsupported", async () => {
  await withAlice(async (store) => {
    const server = createSaslServer("SCRAM-SHA-256", { store, hostname: HOST });
    assertEquals(await server.start(enc.encode("p=tls-exporter,,n=alice,r=abcdef")), {
      kind: "failure",
      reason: "unsupported",
    });
  });
});

Deno.test("SCRAM-SHA-256 gives an unknown user a stable dummy salt", async () => {
  await withAlice(async (store) => {
    const salts: string[] = [];
    for (let i = 0; i < 2; i++) {
      const server = createSaslServer("SCRAM-SHA-256", { store, hostname: HOST });
      const step = await server.start(enc.encode("n,,n=mallory,r=abcdef"));
      ok(step.kind === "challenge");
      const text = dec.decode(step.data);
      ok(/^r=abcdef[^,]+,s=[^,]+,i=10000$/.test(text), text);
      salts.push(/s=([^,]+)/.exec(text)?.[1] ?? "");
    }
    equal(salts[0], salts[1]);
  });
});

Deno.test("SCRAM client refuses a wrong or missing server signature", async () => {
  await withAlice(async (store) => {
    const server = createSaslServer("SCRAM-SHA-256", { store, hostname: HOST });
    const client = createSaslClient("SCRAM-SHA-256", { user: "alice", password: "correct horse" });
    const first = await server.start(client.initialResponse());
    if (first.kind !== "challenge") throw new Error("no server-first");
    const last = await server.next(await client.next(first.data));
    ok(last.kind === "success" && last.data !== undefined);
    await rejects(client.next(enc.encode("v=AAAA")), SaslClientError);

    const skipped = createSaslClient("SCRAM-SHA-256", { user: "alice", password: "x" });
    const s2 = createSaslServer("SCRAM-SHA-256", { store, hostname: HOST });
    const f2 = await s2.start(skipped.initialResponse());
    if (f2.kind !== "challenge") throw new Error("no server-first");
    await skipped.next(f2.data);
    throws(() => skipped.verifyFinal(), SaslClientError);
  });
});

Deno.test("SCRAM client refuses a server nonce that does not extend its own", async () => {
  const client = createSaslClient("SCRAM-SHA-256", { user: "alice", password: "pw" });
  client.initialResponse();
  await rejects(
    client.next(enc.encode("r=someoneelse,s=QSXCR+Q6sek8bf92,i=4096")),
    SaslClientError,
  );
});

Deno.test("chooseMechanism() prefers SCRAM, then CRAM-MD5, and needs TLS for PLAIN/LOGIN", async (t) => {
  const rows: { offered: string[]; isSecure: boolean; want: SaslMechanismName | undefined }[] = [
    { offered: ["PLAIN", "CRAM-MD5", "SCRAM-SHA-256"], isSecure: false, want: "SCRAM-SHA-256" },
    { offered: ["LOGIN", "cram-md5", "PLAIN"], isSecure: true, want: "CRAM-MD5" },
    { offered: ["LOGIN", "PLAIN"], isSecure: true, want: "PLAIN" },
    { offered: ["LOGIN"], isSecure: true, want: "LOGIN" },
    { offered: ["LOGIN", "PLAIN"], isSecure: false, want: undefined },
    { offered: ["GSSAPI", "SCRAM-SHA-1"], isSecure: true, want: undefined },
    { offered: [], isSecure: true, want: undefined },
  ];
  for (const row of rows) {
    await t.step(`${row.offered.join(" ") || "(none)"} secure=${row.isSecure}`, () => {
      equal(chooseMechanism(row.offered, row.isSecure), row.want);
    });
  }
});

Deno.test("parseSaslMechanismName() is case-insensitive and refuses unknown names", () => {
  equal(parseSaslMechanismName("cram-md5"), "CRAM-MD5");
  equal(parseSaslMechanismName("SCRAM-SHA-256"), "SCRAM-SHA-256");
  equal(parseSaslMechanismName("SCRAM-SHA-256-PLUS"), undefined);
});

Deno.test("the RFC 4954 PLAIN example decodes to authzid test, authcid test", async () => {
  await withStore(async (store) => {
    await store.addUser("test", "1234", []);
    const server = createSaslServer("PLAIN", { store, hostname: HOST });
    const ir = Uint8Array.from(atob("dGVzdAB0ZXN0ADEyMzQ="), (c) => c.charCodeAt(0));
    assertEquals(await server.start(ir), { kind: "success", user: "test" });
  });
});
