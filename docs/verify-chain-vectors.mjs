#!/usr/bin/env node
// Independent check of docs/chain-test-vectors.json against docs/chain-spec.md.
//
// This script shares no code with the Go implementation that generated the
// vectors: it implements RFC 8785 canonical JSON, the UUIDv5 job id and the
// link from the specification, using only node:crypto, node:fs and node:path.
// If the two implementations disagree on any byte, it fails.
//
//   node docs/verify-chain-vectors.mjs [path/to/chain-test-vectors.json]
//
// Prints "N passed, 0 failed" and exits 0, or lists each mismatch and exits 1.
//
// Limitation: the vectors file is read with JSON.parse, so a payload reaches
// the canonicalizer as a JavaScript value, not as text. That is exactly
// RFC 8785's model (numbers are IEEE 754 doubles, so 9007199254740993 becomes
// 9007199254740992 and -0 prints as 0, as in the Go implementation), but
// JSON.parse cannot see two things a strict canonicalizer must refuse:
// duplicate member names (the last one wins) and numbers beyond the double
// range (they become Infinity, which this script refuses). Vectors therefore
// contain only valid payloads; refusals are tested in the Go test suite.

import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const file = process.argv[2] ?? join(here, "chain-test-vectors.json");
const doc = JSON.parse(readFileSync(file, "utf8"));

// ---- RFC 8785 (JCS) -------------------------------------------------------

// Member names sort by UTF-16 code units, compared as unsigned integers
// (RFC 8785 section 3.2.3). Written out rather than relying on the default
// Array.prototype.sort comparison, which happens to do the same.
function compareUTF16(a, b) {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const d = a.charCodeAt(i) - b.charCodeAt(i);
    if (d !== 0) return d;
  }
  return a.length - b.length;
}

function canonicalize(value) {
  if (value === null) return "null";
  switch (typeof value) {
    case "boolean":
      return value ? "true" : "false";
    case "number":
      // ECMAScript Number::toString is the JCS number format (section 3.2.2.3).
      if (!Number.isFinite(value)) throw new Error(`number out of range: ${value}`);
      return String(value); // String(-0) is "0"
    case "string":
      // JSON.stringify's string escaping is the JCS string format (3.2.2.2).
      if (/\p{Surrogate}/u.test(value)) throw new Error("lone surrogate in string");
      return JSON.stringify(value);
    case "object":
      if (Array.isArray(value)) return "[" + value.map(canonicalize).join(",") + "]";
      return (
        "{" +
        Object.keys(value)
          .sort(compareUTF16)
          .map((k) => canonicalize(k) + ":" + canonicalize(value[k]))
          .join(",") +
        "}"
      );
    default:
      throw new Error(`not a JSON value: ${typeof value}`);
  }
}

// ---- hashes, job id, link ---------------------------------------------------

const sha256 = (buf) => createHash("sha256").update(buf).digest();
const utf8 = (s) => Buffer.from(s, "utf8");
const hex = (buf) => buf.toString("hex");

function uuidBytes(text) {
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(text)) {
    throw new Error(`not a lowercase 8-4-4-4-12 UUID: ${text}`);
  }
  return Buffer.from(text.replaceAll("-", ""), "hex");
}

function uuidText(bytes) {
  const h = hex(bytes);
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

// RFC 9562 section 5.5: SHA-1 over namespace || name, first 16 bytes,
// version 5 in the high nibble of byte 6, variant 10 in the top bits of byte 8.
function uuidV5(namespace, name) {
  const b = createHash("sha1").update(Buffer.concat([namespace, name])).digest().subarray(0, 16);
  b[6] = (b[6] & 0x0f) | 0x50;
  b[8] = (b[8] & 0x3f) | 0x80;
  return b;
}

function jobIdName(v, payloadHash) {
  const key = v.idempotency_key === null || v.idempotency_key === "" ? hex(payloadHash) : v.idempotency_key;
  const nul = Buffer.of(0);
  return Buffer.concat([utf8(v.tenant_id), nul, utf8(v.partition_key), nul, utf8(v.kind), nul, utf8(key)]);
}

function hash32(text, what) {
  if (!/^[0-9a-f]{64}$/.test(text)) throw new Error(`${what}: not 64 lowercase hex characters: ${text}`);
  return Buffer.from(text, "hex");
}

function linkInput(v, jobId, payloadHash) {
  const prev = v.prev_link === null ? Buffer.alloc(32) : hash32(v.prev_link, "prev_link");
  return Buffer.concat([prev, jobId, utf8(v.t_hlc), payloadHash]);
}

// ---- identifier rules ---------------------------------------------------------

function checkIdentifiers(v) {
  const bytes = (s) => utf8(s).length;
  const noControl = (s) => !/[\u0000-\u001f\u007f-\u009f]/.test(s);
  const problems = [];
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(v.tenant_id)) problems.push("tenant_id breaks its rule");
  if (bytes(v.partition_key) > 255 || !noControl(v.partition_key) || /\p{Surrogate}/u.test(v.partition_key))
    problems.push("partition_key breaks its rule");
  if (!/^[A-Za-z][A-Za-z0-9._:-]{0,127}$/.test(v.kind)) problems.push("kind breaks its rule");
  const key = v.idempotency_key;
  if (key !== null && (bytes(key) > 255 || key.includes("\u0000") || /\p{Surrogate}/u.test(key)))
    problems.push("idempotency_key breaks its rule");
  if (bytes(v.t_hlc) < 1 || bytes(v.t_hlc) > 85) problems.push("t_hlc must be 1 to 85 bytes");
  if (!/^\d{13}-\d{6}-[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(v.t_hlc)) problems.push("t_hlc is not canonical HLC text");
  return problems;
}

// ---- run ----------------------------------------------------------------------

const namespace = uuidBytes(doc.namespace);
let passed = 0;
let failed = 0;
const seen = []; // earlier vectors, to check that each prev_link points back into its own chain

for (const [i, v] of doc.vectors.entries()) {
  const errors = [];
  const expect = (field, got) => {
    if (got !== v[field]) errors.push(`${field}: expected ${v[field]}, computed ${got}`);
  };
  try {
    errors.push(...checkIdentifiers(v));

    const canonical = canonicalize(v.payload);
    expect("canonical_payload", canonical);
    if (canonicalize(JSON.parse(canonical)) !== canonical) errors.push("canonical_payload is not a fixed point");

    const payloadHash = sha256(utf8(canonical));
    expect("payload_hash", hex(payloadHash));

    const name = jobIdName(v, payloadHash);
    if ("job_id_name_hex" in v) expect("job_id_name_hex", hex(name));
    const jobId = uuidV5(namespace, name);
    expect("job_id", uuidText(jobId));

    const input = linkInput(v, jobId, payloadHash);
    if (input.length !== 80 + utf8(v.t_hlc).length) errors.push("link input has the wrong length");
    if ("link_input_hex" in v) expect("link_input_hex", hex(input));
    const link = sha256(input);
    expect("link", hex(link));

    if (v.prev_link !== null) {
      const pred = seen.find((p) => p.link === v.prev_link);
      if (!pred) errors.push("prev_link is not the link of an earlier vector");
      else {
        if (pred.tenant_id !== v.tenant_id || pred.partition_key !== v.partition_key)
          errors.push("prev_link points into another chain");
        if (!(Buffer.compare(utf8(pred.t_hlc), utf8(v.t_hlc)) < 0))
          errors.push("t_hlc does not increase over the predecessor's");
      }
    }
  } catch (e) {
    errors.push(`exception: ${e.message}`);
  }
  seen.push(v);
  if (errors.length === 0) passed++;
  else {
    failed++;
    console.log(`vector ${i} (${v.description}):`);
    for (const e of errors) console.log(`  ${e}`);
  }
}

if (doc.vectors.length < 10) {
  console.log(`only ${doc.vectors.length} vectors; at least 10 are expected`);
  failed++;
}
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
