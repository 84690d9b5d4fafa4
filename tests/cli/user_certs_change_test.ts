/**
 * `user certs NAME --add FILE --remove FINGERPRINT` is one change: when one part is refused the
 * command exits 1 and NAME keeps exactly the pins it had. On SQLite the `--add` was kept when
 * the `--remove` was then refused (a fingerprint not pinned for NAME), under an `error:` line.
 * A `--remove` value that is no SHA-256 fingerprint is a usage error naming the flag (exit 2).
 */
import { deepStrictEqual as assertEquals, equal, match } from "node:assert/strict";
import { userCommand } from "../../src/cli/user.ts";
import { onBothBackends } from "./_backends.ts";
import { recordingIo, type Where } from "./_io.ts";

/** Two self-signed certificates (openssl, EC P-256, valid until 2126) and their fingerprints. */
const PEM_A = `-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUHjA8Xz5L1c0U0U/C1OOWTZ3HVCkwCgYIKoZIzj0EAwIw
EDEOMAwGA1UEAwwFcGluLWEwIBcNMjYxMTI5MjEzNTEyWhgPMjEyNjExMDUyMTM1
MTJaMBAxDjAMBgNVBAMMBXBpbi1hMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
uZcuXAlbpliRayzppjeT1jilhOYuIEWuiuhcTiaiSxFj4Ev1aftsJxEy4SWOja03
y97Ad9YxguQtzYG8TZXO9qNTMFEwHQYDVR0OBBYEFH4Aq1SdSOv0opZC63YqBwBr
LrGGMB8GA1UdIwQYMBaAFH4Aq1SdSOv0opZC63YqBwBrLrGGMA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhALCpvV3jl4N1t2Lf8SYIbVs40Oo9Xy1s
lSAiZGEyVT0QAiBpbFSdam2PKYApXjoJEe9peukJ1q9lqNUC6ztpoRAQxA==
-----END CERTIFICATE-----
`;
const FP_A =
  "E1:A4:FA:B9:4C:92:B1:8F:01:EA:B2:4C:AD:9A:C9:D9:21:68:42:72:2E:BD:D7:7D:B4:E7:4A:3F:4A:34:AA:25";
const PEM_B = `-----BEGIN CERTIFICATE-----
MIIBdzCCAR2gAwIBAgIUKRW1XMlYDUCCOgAqDgN1NleD4xcwCgYIKoZIzj0EAwIw
EDEOMAwGA1UEAwwFcGluLWIwIBcNMjYxMTI5MjEzNTEyWhgPMjEyNjExMDUyMTM1
MTJaMBAxDjAMBgNVBAMMBXBpbi1iMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
6HmjcaUIbzGFwD2EF3mxABxQep6cFkwTLzLCbWGs8c3BCgedm4gsxtj8Ds3JvgAh
YF5KJHaTWIfdaY8nR6iquKNTMFEwHQYDVR0OBBYEFFr/T6jRfMTEYnXzprnKP8YP
NprsMB8GA1UdIwQYMBaAFFr/T6jRfMTEYnXzprnKP8YPNprsMA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIgMCyV6fP6ajPkqyZhk44vT31c1VAG9LHw
Vktu3zACEfMCIQCzdqNOkYUffU22AxZT9ctkIDN/fCaq8yubNwhmM4dVpw==
-----END CERTIFICATE-----
`;
const FP_B =
  "78:3B:90:77:C5:FF:63:BB:BB:5C:4C:D7:53:08:44:F3:CC:3D:0E:45:C1:F1:4F:E0:93:C7:D7:D8:DB:51:BC:1B";
const FAST = { storeOptions: { scramIterations: 4096, scryptParams: { logN: 10, r: 8, p: 1 } } };

async function user(where: Where, argv: string[], stdin: string[] = []) {
  const io = recordingIo(where, { answers: stdin });
  const code = await userCommand(argv, io, FAST);
  return { code, out: io.out, err: io.err };
}

const dirOf = (where: Where) => typeof where === "string" ? where : where.dataDir;

/**
 * `user certs NAME`, with `--add` of one of the certificates `setUp` wrote, then `--remove` of
 * a fingerprint, when given.
 */
function certs(
  where: Where,
  name: string,
  change: { readonly add?: "a.pem" | "b.pem"; readonly remove?: string },
) {
  const argv = ["certs", name];
  if (change.add !== undefined) argv.push("--add", `${dirOf(where)}/${change.add}`);
  if (change.remove !== undefined) argv.push("--remove", change.remove);
  return user(where, argv);
}

/** What `user certs NAME` lists: the user's pins, one a line. */
async function pinsOf(where: Where, name: string): Promise<string> {
  return (await user(where, ["certs", name])).out;
}

await onBothBackends("user certs --add and --remove: all or nothing", async (t, open) => {
  /** Users alice and bob; a.pem and b.pem in the data dir; bob pins b.pem. */
  const setUp = async (where: Where) => {
    for (const name of ["alice", "bob"]) {
      const add = ["add", name, "--domain", `${name}.example`, "--password-stdin"];
      equal((await user(where, add, ["pw"])).code, 0);
    }
    await Deno.writeTextFile(`${dirOf(where)}/a.pem`, PEM_A);
    await Deno.writeTextFile(`${dirOf(where)}/b.pem`, PEM_B);
    equal((await certs(where, "bob", { add: "b.pem" })).code, 0);
  };
  /** A step on a fresh target after `setUp`. */
  const step = (name: string, body: (where: Where) => Promise<void>) =>
    t.step(name, () =>
      open(async (where) => {
        await setUp(where);
        await body(where);
      }));

  await step(
    "--remove of a fingerprint not pinned for the user: the --add is not kept",
    async (where) => {
      const r = await certs(where, "alice", { add: "a.pem", remove: FP_B });
      equal(r.code, 1, r.err);
      match(r.err, /is not pinned for user "alice"/);
      assertEquals(await pinsOf(where, "alice"), "");
      assertEquals(await pinsOf(where, "bob"), `${FP_B}\n`);
    },
  );

  await step(
    "--add of a certificate another user holds: the --remove is not made",
    async (where) => {
      equal((await certs(where, "alice", { add: "a.pem" })).code, 0);
      const r = await certs(where, "alice", { add: "b.pem", remove: FP_A });
      equal(r.code, 1, r.err);
      match(r.err, /already pinned for user "bob"/);
      assertEquals(await pinsOf(where, "alice"), `${FP_A}\n`);
    },
  );

  await step("both allowed: both made", async (where) => {
    equal((await certs(where, "alice", { add: "a.pem" })).code, 0);
    equal((await certs(where, "bob", { remove: FP_B })).code, 0);
    const r = await certs(where, "alice", { add: "b.pem", remove: FP_A });
    equal(r.code, 0, r.err);
    assertEquals(await pinsOf(where, "alice"), `${FP_B}\n`);
  });

  await step("--remove with no fingerprint is a usage error naming the flag", async (where) => {
    const r = await certs(where, "bob", { remove: "AB:CD" });
    equal(r.code, 2, r.err);
    match(r.err, /--remove: "AB:CD"/);
    assertEquals(await pinsOf(where, "bob"), `${FP_B}\n`);
  });
});
