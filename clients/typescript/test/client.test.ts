// The TypeScript client against a real `ordo serve` (test/server.ts): what
// a user of the client relies on, through the client's own methods.

import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import dc from "node:diagnostics_channel";

import { JobFailure, OrdoClient, OrdoError, runWorker, tileIndexPath, type Lease, type WorkerEvent } from "../src/index.js";
import { startServer, type Server } from "./server.js";

let srv: Server;
let c: OrdoClient;

before(async () => {
  srv = await startServer();
  c = srv.client();
});
after(async () => {
  await srv?.stop();
});

/** Resolves with the error p rejects with; fails when p resolves. */
async function rejection(p: Promise<unknown>): Promise<OrdoError> {
  try {
    await p;
  } catch (err) {
    assert.ok(err instanceof OrdoError, `want an OrdoError, got ${String(err)}`);
    return err;
  }
  assert.fail("the call succeeded; want an OrdoError");
}

/** A kind of the test's own, so that tests do not take each other's jobs. */
let kinds = 0;
function kind(name: string): string {
  return `ts.${name}.${++kinds}`;
}

/** Events of a worker, with a wait for the first that matches. */
function recorder() {
  const events: WorkerEvent[] = [];
  const waiters: { pred: (e: WorkerEvent) => boolean; resolve: (e: WorkerEvent) => void }[] = [];
  return {
    events,
    onEvent(e: WorkerEvent) {
      events.push(e);
      for (const w of [...waiters]) {
        if (w.pred(e)) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve(e);
        }
      }
    },
    /** The n-th event (1-based, counting past ones too) that matches pred, within ms. */
    wait(pred: (e: WorkerEvent) => boolean, n = 1, ms = 20_000): Promise<WorkerEvent> {
      let seen = 0;
      for (const e of events) if (pred(e) && ++seen === n) return Promise.resolve(e);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no matching event within ${ms}ms; events: ${events.map((e) => e.type).join(", ")}`)), ms);
        waiters.push({
          pred: (e) => pred(e) && ++seen === n,
          resolve: (e) => {
            clearTimeout(timer);
            resolve(e);
          },
        });
      });
    },
  };
}

describe("producers", () => {
  it("enqueues one job, deduplicates by Idempotency-Key, and refuses the key with another payload", async () => {
    const k = kind("enqueue");
    const first = await c.enqueue({ kind: k, payload: { n: 1 } }, { idempotencyKey: "order-1" });
    assert.equal(first.deduplicated, false);
    assert.equal(first.tenant, srv.tenant);
    assert.equal(first.mode, "hlc-only");
    assert.match(first.t_hlc ?? "", /^\d{13}-\d{6}-ts-node$/);
    const again = await c.enqueue({ kind: k, payload: { n: 1 } }, { idempotencyKey: "order-1" });
    assert.equal(again.deduplicated, true);
    assert.equal(again.job_id, first.job_id);

    const e = await rejection(c.enqueue({ kind: k, payload: { n: 2 } }, { idempotencyKey: "order-1" }));
    assert.equal(e.status, 409);
    assert.equal(e.code, "idempotency_conflict");

    const job = await c.show(first.job_id);
    assert.equal(job.status, "pending");
    assert.deepEqual(job.payload, { n: 1 });
    assert.equal(job.kind, k);
    assert.equal(job.chain?.link, first.link);
    assert.deepEqual(job.attempt_errors ?? [], []);
  });

  it("enqueues many at once, all or none", async () => {
    const k = kind("batch");
    const res = await c.enqueueMany([0, 1, 2].map((i) => ({ kind: k, payload: { i } })));
    assert.equal(res.length, 3);
    assert.ok(res.every((r) => !r.deduplicated));
    // One bad job refuses the whole batch, naming it.
    const e = await rejection(c.enqueueMany([{ kind: k, payload: { i: 9 } }, { kind: "not a kind" }]));
    assert.equal(e.status, 400);
    assert.equal(e.code, "invalid_field");
    assert.equal(e.field, "jobs[1].kind");
    const page = await c.list({ kind: k });
    assert.deepEqual(page.jobs.map((j) => j.job_id), res.map((r) => r.job_id));
  });

  it("lists with filters, cursors, order=newest and totals", async () => {
    const k = kind("list");
    const ids = (await c.enqueueMany([0, 1, 2, 3, 4].map((i) => ({ kind: k, partition: "eu", payload: { i } })))).map((r) => r.job_id);
    await c.enqueue({ kind: k, partition: "us", payload: { i: 5 } });

    const seen: string[] = [];
    let cursor: string | undefined;
    let pages = 0;
    do {
      const page = await c.list({ kind: k, partition: "eu", limit: 2, ...(cursor ? { cursor } : {}) });
      seen.push(...page.jobs.map((j) => j.job_id));
      assert.equal(page.jobs[0]?.payload, undefined, "no payload without payload=true");
      cursor = page.next_cursor;
      pages++;
    } while (cursor !== "");
    assert.deepEqual(seen, ids);
    assert.equal(pages, 3);

    const all: string[] = [];
    for await (const j of c.listAll({ kind: k, partition: "eu", limit: 2 })) all.push(j.job_id);
    assert.deepEqual(all, ids);

    const newest = await c.list({ kind: k, partition: "eu", order: "newest", payload: true, totals: true });
    assert.deepEqual(newest.jobs.map((j) => j.job_id), [...ids].reverse());
    assert.deepEqual(newest.jobs[0]?.payload, { i: 4 });
    assert.ok(newest.totals, "totals=true adds totals");
    assert.ok((newest.totals?.pending ?? 0) >= 6);

    const none = await c.list({ kind: k, state: ["running", "succeeded"] });
    assert.deepEqual(none.jobs, []);
    const pending = await c.list({ kind: k, state: "pending" });
    assert.equal(pending.jobs.length, 6);
    assert.equal(pending.totals, undefined);
  });

  it("cancels, retries and deletes, with the API's conflict codes", async () => {
    const k = kind("lifecycle");
    const { job_id } = await c.enqueue({ kind: k });
    assert.equal((await rejection(c.retry(job_id))).code, "not_retryable");
    assert.equal((await rejection(c.delete(job_id))).code, "job_not_finished");
    assert.deepEqual(await c.cancel(job_id, "not needed"), { job_id, status: "cancelled" });
    const again = await rejection(c.cancel(job_id));
    assert.equal(again.status, 409);
    assert.equal(again.code, "job_finished");
    assert.deepEqual(await c.retry(job_id), { job_id, status: "pending" });
    const [lease] = await c.dequeue({ kinds: [k] });
    assert.equal(lease?.job_id, job_id);
    assert.equal(lease?.attempt, 1, "a retry resets the attempts");
    await c.complete(lease!);
    assert.deepEqual(await c.delete(job_id), { job_id, status: "pruned" });
    const pruned = await c.show(job_id);
    assert.equal(pruned.status, "pruned");
    assert.equal(pruned.updated_at, undefined);
    const stats = await c.stats();
    assert.equal(stats.tenant, srv.tenant);
    assert.equal(typeof stats.counts.pending, "number");
  });
});

describe("errors", () => {
  it("maps bad input to OrdoError with the API's status, code and field", async () => {
    let e = await rejection(c.enqueue({ kind: "no spaces" }));
    assert.deepEqual([e.status, e.code, e.field], [400, "invalid_field", "kind"]);
    e = await rejection(c.enqueue({ kind: kind("bad"), run_at: "tomorrow" }));
    assert.deepEqual([e.status, e.code, e.field], [400, "invalid_field", "run_at"]);
    e = await rejection(c.enqueue({ kind: kind("bad"), colour: "red" } as never));
    assert.deepEqual([e.status, e.code, e.field], [400, "unknown_field", "colour"]);
    e = await rejection(c.show("not-a-uuid"));
    assert.deepEqual([e.status, e.code, e.field], [400, "invalid_field", "id"]);
    e = await rejection(c.show("00000000-0000-4000-8000-000000000000"));
    assert.deepEqual([e.status, e.code], [404, "not_found"]);
    e = await rejection(c.complete({ job_id: "00000000-0000-4000-8000-000000000000", lease_token: "nope" }));
    assert.deepEqual([e.status, e.code, e.field], [400, "invalid_field", "lease_token"]);
    e = await rejection(c.dequeue({ wait_seconds: 31 }));
    assert.deepEqual([e.status, e.code, e.field], [400, "invalid_field", "wait_seconds"]);
    e = await rejection(c.list({ limit: 0 }));
    assert.deepEqual([e.status, e.code, e.field], [400, "invalid_field", "limit"]);
    assert.match(e.message, /GET \/v1\/tenants\/.*\/jobs: 400 invalid_field \(limit\): /);
  });

  it("maps a body that is not JSON to 400 invalid_json", async () => {
    // The client always sends JSON; a fetch that breaks the body shows what
    // the client makes of the server's answer to one that is not.
    const broken = srv.client({
      fetch: (input, init) => globalThis.fetch(input, { ...init, body: '{"kind": "a", "payload": {"x": 1, "x": 2}}' }),
    });
    const e = await rejection(broken.enqueue({ kind: "a" }));
    assert.deepEqual([e.status, e.code], [400, "invalid_json"]);
    const cut = srv.client({ fetch: (input, init) => globalThis.fetch(input, { ...init, body: '{"kind": ' }) });
    assert.equal((await rejection(cut.enqueue({ kind: "a" }))).code, "invalid_json");
  });

  it("maps tokens: 401 unauthorized, 403 forbidden for another tenant", async () => {
    const e401 = await rejection(srv.client({ token: "ordo_000000000000_nope" }).stats());
    assert.deepEqual([e401.status, e401.code], [401, "unauthorized"]);
    const e403 = await rejection(srv.client({ token: srv.otherToken }).stats());
    assert.deepEqual([e403.status, e403.code], [403, "forbidden"]);
  });
});

describe("workers", () => {
  it("long poll: a waiting dequeue gets the job enqueued while it waits, long before wait_seconds", { timeout: 30_000 }, async () => {
    const k = kind("longpoll");
    // Nothing to lease: the server waits wait_seconds, then answers [].
    const t0 = performance.now();
    assert.deepEqual(await c.dequeue({ kinds: [k], wait_seconds: 1 }), []);
    assert.ok(performance.now() - t0 >= 900, `an empty long poll answered after ${performance.now() - t0}ms; want about 1s`);

    // The enqueue is sent once the waiting dequeue's body is on the wire
    // (undici's bodySent event), not after some sleep.
    const sent = new Promise<void>((resolve) => {
      const onSent = (m: unknown) => {
        const path = (m as { request?: { path?: string } }).request?.path ?? "";
        if (path.endsWith("/dequeue")) {
          dc.unsubscribe("undici:request:bodySent", onSent);
          resolve();
        }
      };
      dc.subscribe("undici:request:bodySent", onSent);
    });
    let settled = false;
    const waiting = c.dequeue({ kinds: [k], wait_seconds: 20, owner: "long-poller" }).finally(() => (settled = true));
    await sent;
    assert.equal(settled, false, "the dequeue answered before anything was enqueued");
    const t1 = performance.now();
    const { job_id } = await c.enqueue({ kind: k, payload: { woke: true } });
    const leases = await waiting;
    const took = performance.now() - t1;
    assert.equal(leases.length, 1);
    assert.equal(leases[0]?.job_id, job_id);
    assert.equal(leases[0]?.lease_owner, "long-poller");
    assert.deepEqual(leases[0]?.payload, { woke: true });
    assert.ok(took < 5_000, `the waiting dequeue answered ${took}ms after the enqueue; want well under its 20s wait`);
    await c.complete(leases[0]!);
  });

  it("a worker loop processes jobs end to end: completes, fails for good, retries", { timeout: 30_000 }, async (t) => {
    const k = kind("worker");
    const jobs = await c.enqueueMany([
      { kind: k, payload: { do: "ok", n: 1 } },
      { kind: k, payload: { do: "ok", n: 2 } },
      { kind: k, payload: { do: "ok", n: 3 } },
      { kind: k, payload: { do: "broken" }, max_attempts: 5 },
      { kind: k, payload: { do: "flaky" } },
    ]);
    const [ok1, ok2, ok3, broken, flaky] = jobs.map((j) => j.job_id);
    const rec = recorder();
    const stop = new AbortController();
    t.after(() => stop.abort()); // a failed assertion must not leave the worker running
    const handled: Lease[] = [];
    const worker = runWorker(
      c,
      async (lease) => {
        handled.push(lease);
        const p = lease.payload as { do: string };
        if (p.do === "broken") throw new JobFailure("cannot be done", { retry: false });
        if (p.do === "flaky" && lease.attempt === 1) throw new JobFailure("try again", { retryAfterSeconds: 0 });
      },
      { signal: stop.signal, kinds: [k], owner: "ts-worker", concurrency: 2, waitSeconds: 2, onEvent: rec.onEvent },
    );
    await rec.wait((e) => e.type === "completed", 4);
    await rec.wait((e) => e.type === "failed", 2);
    stop.abort();
    const summary = await worker;
    assert.deepEqual(summary, { completed: 4, failed: 2, leaseLost: 0 });
    assert.deepEqual(rec.events.filter((e) => e.type === "error"), []);

    for (const id of [ok1, ok2, ok3]) {
      const j = await c.show(id!);
      assert.equal(j.status, "succeeded");
      assert.equal(j.attempts, 1);
      assert.equal(j.lease_owner ?? "ts-worker", "ts-worker");
    }
    const b = await c.show(broken!);
    assert.equal(b.status, "failed");
    assert.equal(b.attempts, 1, "retry: false fails for good");
    assert.equal(b.last_error, "cannot be done");
    assert.deepEqual(b.attempt_errors?.map((a) => [a.attempt, a.error, a.worker]), [[1, "cannot be done", "ts-worker"]]);
    const f = await c.show(flaky!);
    assert.equal(f.status, "succeeded");
    assert.equal(f.attempts, 2);
    assert.deepEqual(f.attempt_errors?.map((a) => [a.attempt, a.error]), [[1, "try again"]]);
    assert.equal(handled.filter((l) => l.job_id === flaky).length, 2);
  });

  it("a worker extends the lease while the handler runs past lease_seconds", { timeout: 30_000 }, async (t) => {
    const k = kind("heartbeat");
    const { job_id } = await c.enqueue({ kind: k });
    const rec = recorder();
    const stop = new AbortController();
    t.after(() => stop.abort()); // a failed assertion must not leave the worker running
    let firstExpiry = "";
    let shownExpiry = "";
    const worker = runWorker(
      c,
      async (lease) => {
        firstExpiry = lease.lease_expires_at;
        // Run until the lease has been extended three times (past its 1s).
        const third = await rec.wait((e) => e.type === "extended", 3);
        assert.equal(third.type === "extended" && third.lease.job_id, job_id);
        shownExpiry = (await c.show(lease.job_id)).lease_expires_at ?? "";
      },
      { signal: stop.signal, kinds: [k], leaseSeconds: 1, waitSeconds: 1, onEvent: rec.onEvent },
    );
    await rec.wait((e) => e.type === "completed");
    stop.abort();
    assert.deepEqual(await worker, { completed: 1, failed: 0, leaseLost: 0 });
    assert.ok(Date.parse(shownExpiry) > Date.parse(firstExpiry), `lease_expires_at ${shownExpiry} not after the first ${firstExpiry}`);
    const j = await c.show(job_id);
    assert.equal(j.status, "succeeded");
    assert.equal(j.attempts, 1, "the lease never expired");
  });

  it("a worker whose lease is gone (job cancelled) aborts the handler and drops its result", { timeout: 30_000 }, async (t) => {
    const k = kind("gone");
    const { job_id } = await c.enqueue({ kind: k });
    const rec = recorder();
    const stop = new AbortController();
    t.after(() => stop.abort()); // a failed assertion must not leave the worker running
    let reason: unknown;
    const worker = runWorker(
      c,
      async (_lease, { signal }) => {
        await c.cancel(job_id, "changed my mind");
        await new Promise<void>((resolve) => signal.addEventListener("abort", () => resolve(), { once: true }));
        reason = signal.reason;
      },
      { signal: stop.signal, kinds: [k], leaseSeconds: 1, waitSeconds: 1, onEvent: rec.onEvent },
    );
    await rec.wait((e) => e.type === "lease_lost");
    stop.abort();
    assert.deepEqual(await worker, { completed: 0, failed: 0, leaseLost: 1 });
    assert.ok(reason instanceof OrdoError);
    assert.deepEqual([reason.status, reason.code], [409, "job_finished"]);
    assert.equal((await c.show(job_id)).status, "cancelled");
  });

  it("a lease lost to another worker: the first worker's complete, extend and fail get 409 lease_lost", { timeout: 30_000 }, async () => {
    const k = kind("stolen");
    const a = srv.client();
    const b = srv.client();
    const { job_id } = await c.enqueue({ kind: k, payload: { v: 1 } });
    const [la] = await a.dequeue({ kinds: [k], lease_seconds: 1, owner: "worker-a" });
    assert.equal(la?.job_id, job_id);
    // Worker A lets its 1s lease expire; the server's lease rescue (every
    // 5s) puts the job back, and worker B's long poll leases it.
    const [lb] = await b.dequeue({ kinds: [k], lease_seconds: 30, owner: "worker-b", wait_seconds: 15 });
    assert.equal(lb?.job_id, job_id, "worker B's long poll got no job within 15s");
    assert.equal(lb?.attempt, 2);
    assert.notEqual(lb?.lease_token, la!.lease_token);

    for (const call of [() => a.complete(la!), () => a.extend(la!, 30), () => a.fail(la!, { error: "late" })]) {
      const e = await rejection(call());
      assert.equal(e.status, 409);
      assert.equal(e.code, "lease_lost");
      assert.ok(e.leaseGone);
    }
    assert.deepEqual(await b.complete(lb!), { job_id, status: "succeeded" });
    // The same completion again (an answer lost, say) answers as the first;
    // the old lease now finds the job finished.
    assert.deepEqual(await b.complete(lb!), { job_id, status: "succeeded" });
    assert.equal((await rejection(a.complete(la!))).code, "job_finished");

    const j = await c.show(job_id);
    assert.equal(j.status, "succeeded");
    assert.equal(j.attempts, 2);
    assert.equal(j.attempt_errors?.length, 1);
    assert.equal(j.attempt_errors?.[0]?.worker, "worker-a");
    assert.match(j.attempt_errors?.[0]?.error ?? "", /lease expired/);
  });
});

describe("audit", () => {
  it("verifies the chains, lists checkpoints and serves a job's inclusion proof", { timeout: 30_000 }, async () => {
    const { job_id } = await c.enqueue({ kind: kind("audit"), payload: { audited: true } });
    const v = await c.verify();
    assert.equal(v.valid, true);
    assert.equal(v.issue_count, 0);
    assert.ok(v.entries_checked >= 1);
    assert.ok(v.chains.length >= 1);
    assert.equal((await c.verify("")).valid, true);

    const pos = (await c.show(job_id)).chain!.chain_pos;
    // The server checkpoints every second (test/server.ts): wait for one
    // that covers the job, looking every 100ms for at most 15s.
    const deadline = Date.now() + 15_000;
    let cp = (await c.checkpoints()).find((x) => x.partition_key === "");
    while (!cp || cp.size <= pos) {
      assert.ok(Date.now() < deadline, `no checkpoint covers chain_pos ${pos} within 15s`);
      await new Promise((r) => setTimeout(r, 100));
      cp = (await c.checkpoints()).find((x) => x.partition_key === "");
    }
    const proof = await c.proof(job_id);
    assert.equal(proof.format, "ordo-proof/v1");
    assert.equal(proof.entry.job_id, job_id);
    assert.equal(proof.leaf_index, pos);
    assert.match(proof.checkpoint, /\n— ts-node /);

    const snap = await c.createSnapshot({ partition: "", from_chain_pos: 0, to_chain_pos: pos });
    assert.equal(snap.entry_count, pos + 1);
    assert.ok((await c.snapshots()).some((s) => s.batch_id === snap.batch_id));
    const e = await rejection(c.createSnapshot({ from_chain_pos: pos + 1000, to_chain_pos: pos + 1001 }));
    assert.deepEqual([e.status, e.code], [409, "snapshot_refused"]);
  });

  it("serves the chain as a tlog-tiles log: checkpoint, hash tile, entry bundle", { timeout: 30_000 }, async () => {
    await c.enqueue({ kind: kind("tiles"), payload: { tiled: true } });
    // A checkpoint of the default partition exists once the server has
    // checkpointed (every second, test/server.ts): wait at most 15s.
    const deadline = Date.now() + 15_000;
    let note: string | undefined;
    while (note === undefined) {
      try {
        note = await c.tlogCheckpoint();
      } catch (e) {
        assert.ok(e instanceof OrdoError && e.status === 404, `checkpoint: ${e}`);
        assert.ok(Date.now() < deadline, "no checkpoint within 15s");
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    const [origin, sizeLine] = note.split("\n");
    assert.equal(origin, `ordo/${c.tenant}/`);
    const size = Number(sizeLine);
    assert.ok(size >= 1);
    const width = Math.min(size, 256);
    const hashes = await c.tlogTile(0, 0, width < 256 ? { width } : {});
    assert.equal(hashes.length, 32 * width);
    const bundle = await c.tlogEntries(0, width < 256 ? { width } : {});
    assert.ok(bundle.length >= 32 * width, `entry bundle of ${bundle.length} bytes for ${width} entries`);
    const e = await rejection(c.tlogTile(0, 999_999, { width: 1 }));
    assert.equal(e.status, 404);
    assert.equal(tileIndexPath(1234067, 5), "x001/x234/067.p/5");
  });

  it("health, readiness and metrics", async () => {
    assert.deepEqual(await c.health(), { status: "ok" });
    const r = await c.ready();
    assert.equal(r.status, "ready");
    assert.equal(r.node, "ts-node");
    assert.match(await c.metrics(), /^scheduler_hlc_enqueues_total /m);
  });
});
