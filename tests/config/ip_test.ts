// config/_ip.ts answers as node:net's isIP does (outbound.resolver was checked with it).
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { isIP as nodeIsIP } from "node:net";
import { isIP } from "../../src/config/_ip.ts";

const SAMPLES = [
  "127.0.0.1",
  "0.0.0.0",
  "255.255.255.255",
  "256.0.0.1",
  "1.2.3",
  "1.2.3.4.5",
  "01.2.3.4",
  "1.2.3.04",
  "1.2.3.4 ",
  " 1.2.3.4",
  "1.2.3.-1",
  "",
  "::",
  "::1",
  "1::",
  "2001:db8::1",
  "2001:db8:0:0:0:0:0:1",
  "2001:db8:0:0:0:0:0:0:1",
  "2001:db8::1::2",
  "::ffff:192.0.2.1",
  "fe80::1%eth0",
  "fe80::1%",
  "fe80::1%eth0 ",
  "[::1]",
  "::g",
  "12345::1",
  "a:b:c:d:e:f:1:2",
  "a:b:c:d:e:f:1.2.3.4",
  "a:b:c:d:e:1.2.3.4",
  "::1.2.3.4",
  "1:2:3:4:5:6:7::",
  "1:2:3:4:5:6:7:8:",
  ":1:2:3:4:5:6:7",
  "localhost",
  "dns.example",
  "1.2.3.4/24",
  "FFFF::",
  "fe80::1%a.b:c-d",
];

Deno.test("config isIP: same answer as node:net for addresses, near-misses and names", () => {
  for (const s of SAMPLES) assertEquals(isIP(s), nodeIsIP(s), JSON.stringify(s));
});
