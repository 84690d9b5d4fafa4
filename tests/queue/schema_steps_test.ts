/**
 * A shipped migration step never changes: existing files and databases applied that text, and a
 * new one must get the same schema. The SQLite counter triggers are composed by code
 * (src/queue/_schema_counters.ts); this pins every step's text, for both backends. A new step
 * is appended here with its hash when it ships.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { QUEUE_MIGRATIONS } from "../../src/queue/_schema.ts";
import { PG_QUEUE_MIGRATIONS } from "../../src/queue/pg/schema.ts";

const SQLITE_STEPS = [
  "aecfaf5e48dc15e4b8aa7413670800048eee8cb5bf906c915932aef494b69e54",
  "cd84876cc1959d8045df0c683ae61d6c4053d0b73c827095c2c5805f1a928d66",
  "5df51d83c4b6186eda7891b903f7c9b04ff9ed00587b2abf73c2f58797588321",
  "cf34e95c1a52ac59e6929e38221e88e1bd7da353e5c1dec5343bc3c533ec1cb3",
  "07784301f612b885337b236a6bae318d054720c1f1b0ed4b1206341564c9e050",
  "54546ed9cac652f53f0056d2af8c9bee1ca918427b6cd6eb7f855d5f00ae3ff9",
  "538b30176d78745642b039796f713064b48103e5948418042fa4ab13809215e9",
  "5bcc38d080f7324cfa5baa51e5c213cfda37c8412725491375d177d331d39617",
  "796d43143e9669cfd303472b8f4830dcd6fe4980d044b4f7045096cb522a4134",
  "3710ee4a96ddea72a880b3fc38311405e19cadab5cf539335831507792977307",
  "f62f005ee372a752456d46a2a6efa63d1988b94301be1e9c124e0386e8fc6bc3",
  "5e6a494f5ebb6f07f80e454671ef7fe0f0eebcb2966d67e500772e519242ec40",
  "80b15a40c889c82cca7e37d67f88befb7fb488b6505c649067c2f6539205f95d",
];

const POSTGRES_STEPS = [
  "64d2d3f2965b138aa189e9cefa6541902a54198d68f30c16a0bb16f3f1941fdc",
  "64ed9f6e9fc75a695afd0fb327ef76ad4af22f432ce6d4206d3c0b2219e6bfb9",
  "21fc001ebb71a9cfacc1f9a957b9a2b18e97445d5fe6e794631eb370f717ccf2",
  "54546ed9cac652f53f0056d2af8c9bee1ca918427b6cd6eb7f855d5f00ae3ff9",
  "fc0e55ca7f6a2e8aa679c8dbef7bf2d8ab54389a397a1e8a3c8d5baee17c09c3",
  "96e90f502032834d3c61248d3c7d53c3fbf86930ec2fe957f40a1bc53b630a23",
  "8ad950c72ebd1cdd93511e4b988006269bb10d5630677db83c9e56b5ae48ecf6",
  "530633e29fabc599c9bdbd6247653cba99e53de867cef9cb68d2ef85343ee94a",
];

function sha256(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

Deno.test("the shipped SQLite queue schema steps run the same text as when they shipped", () => {
  assert.ok(QUEUE_MIGRATIONS.length >= SQLITE_STEPS.length);
  SQLITE_STEPS.forEach((hash, i) => {
    assert.equal(sha256(QUEUE_MIGRATIONS[i] ?? ""), hash, `step ${i + 1} changed`);
  });
});

Deno.test("the shipped PostgreSQL queue schema steps run the same text as when they shipped", () => {
  assert.ok(PG_QUEUE_MIGRATIONS.length >= POSTGRES_STEPS.length);
  POSTGRES_STEPS.forEach((hash, i) => {
    assert.equal(sha256(PG_QUEUE_MIGRATIONS[i] ?? ""), hash, `step ${i + 1} changed`);
  });
});
