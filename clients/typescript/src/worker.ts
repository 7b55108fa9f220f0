// A worker loop over the client: dequeue with long poll, run the handler,
// complete or fail, extending the lease while the handler runs.

import { OrdoClient, OrdoError, type Lease } from "./client.js";

/** Throw it from a handler to say how the attempt failed. */
export class JobFailure extends Error {
  override readonly name = "JobFailure";
  readonly retry: boolean | undefined;
  readonly retryAfterSeconds: number | undefined;
  constructor(message: string, opts: { retry?: boolean; retryAfterSeconds?: number } = {}) {
    super(message);
    this.retry = opts.retry;
    this.retryAfterSeconds = opts.retryAfterSeconds;
  }
}

export interface HandlerContext {
  /**
   * Aborted when the lease is gone (an extension answered 409 `lease_lost`
   * or `job_finished`: the job was given to another worker, cancelled, ...);
   * its reason is that OrdoError. The result of the attempt is then dropped.
   */
  signal: AbortSignal;
}

export type Handler = (lease: Lease, ctx: HandlerContext) => unknown | Promise<unknown>;

export type WorkerEvent =
  | { type: "leased"; lease: Lease }
  | { type: "extended"; lease: Lease; leaseExpiresAt: string }
  | { type: "completed"; lease: Lease }
  | { type: "failed"; lease: Lease; error: unknown; retried: boolean }
  | { type: "lease_lost"; lease: Lease; error: OrdoError }
  | { type: "error"; error: unknown; lease?: Lease };

export interface WorkerOptions {
  /** Stops the loop: no more dequeues; running handlers finish and are reported. */
  signal: AbortSignal;
  /** Only these kinds; default every kind. */
  kinds?: string[];
  /** The lease owner shown on the jobs. */
  owner?: string;
  /** Jobs run at once; default 1. */
  concurrency?: number;
  /** Each lease, in seconds; default 30. Extended every third of it while the handler runs. */
  leaseSeconds?: number;
  /** The long poll's wait, in seconds (at most 30); default 20. */
  waitSeconds?: number;
  /** After a dequeue that failed (service down, say), wait this long before the next; default 1000. */
  errorBackoffMs?: number;
  /** Told of each step, for logs and metrics. */
  onEvent?: (e: WorkerEvent) => void;
}

export interface WorkerSummary {
  completed: number;
  failed: number;
  leaseLost: number;
}

/**
 * Runs handler on the tenant's jobs until opts.signal aborts, then waits
 * for the handlers still running and resolves. A handler that returns
 * completes its job; one that throws fails its attempt (retried while
 * attempts remain; throw a JobFailure to say otherwise). Jobs run at least
 * once: a lease lost midway (409) drops the result, and the job runs again
 * elsewhere, so make handlers idempotent. A dequeue cut short by the stop
 * may have leased jobs nobody will run: they go back to the queue when
 * their lease expires.
 */
export async function runWorker(client: OrdoClient, handler: Handler, opts: WorkerOptions): Promise<WorkerSummary> {
  const concurrency = opts.concurrency ?? 1;
  const leaseSeconds = opts.leaseSeconds ?? 30;
  const waitSeconds = opts.waitSeconds ?? 20;
  const emit = (e: WorkerEvent) => {
    try {
      opts.onEvent?.(e);
    } catch {
      // an observer's error must not stop the worker
    }
  };
  const summary: WorkerSummary = { completed: 0, failed: 0, leaseLost: 0 };
  const running = new Set<Promise<void>>();
  let slotFreed: () => void = () => {};

  const runOne = async (lease: Lease) => {
    const lost = new AbortController();
    const gone = (err: OrdoError) => {
      if (!lost.signal.aborted) {
        summary.leaseLost++;
        emit({ type: "lease_lost", lease, error: err });
        lost.abort(err);
      }
    };
    let extending: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      extending = extending.then(async () => {
        if (lost.signal.aborted) return;
        try {
          const r = await client.extend(lease, leaseSeconds);
          emit({ type: "extended", lease, leaseExpiresAt: r.lease_expires_at });
        } catch (err) {
          if (err instanceof OrdoError && err.leaseGone) gone(err);
          else emit({ type: "error", error: err, lease });
        }
      });
    }, Math.max(200, (leaseSeconds * 1000) / 3));
    let outcome: { ok: true } | { ok: false; error: unknown };
    try {
      await handler(lease, { signal: lost.signal });
      outcome = { ok: true };
    } catch (error) {
      outcome = { ok: false, error };
    } finally {
      clearInterval(timer);
      await extending;
    }
    if (lost.signal.aborted) return; // the lease is gone: the result is dropped
    try {
      if (outcome.ok) {
        await client.complete(lease);
        summary.completed++;
        emit({ type: "completed", lease });
      } else {
        const e = outcome.error;
        const f = e instanceof JobFailure ? e : undefined;
        const r = await client.fail(lease, {
          error: e instanceof Error ? e.message || e.name : String(e),
          ...(f?.retry !== undefined ? { retry: f.retry } : {}),
          ...(f?.retryAfterSeconds !== undefined ? { retryAfterSeconds: f.retryAfterSeconds } : {}),
        });
        summary.failed++;
        emit({ type: "failed", lease, error: e, retried: r.retried });
      }
    } catch (err) {
      if (err instanceof OrdoError && err.leaseGone) gone(err);
      else emit({ type: "error", error: err, lease });
    }
  };

  const stopped = new Promise<void>((resolve) => {
    if (opts.signal.aborted) resolve();
    else opts.signal.addEventListener("abort", () => resolve(), { once: true });
  });

  while (!opts.signal.aborted) {
    if (running.size >= concurrency) {
      await Promise.race([new Promise<void>((r) => (slotFreed = r)), stopped]);
      continue;
    }
    let leases: Lease[];
    try {
      leases = await client.dequeue(
        {
          limit: concurrency - running.size,
          lease_seconds: leaseSeconds,
          wait_seconds: waitSeconds,
          ...(opts.kinds ? { kinds: opts.kinds } : {}),
          ...(opts.owner ? { owner: opts.owner } : {}),
        },
        { signal: opts.signal },
      );
    } catch (err) {
      if (opts.signal.aborted) break;
      emit({ type: "error", error: err });
      await Promise.race([new Promise((r) => setTimeout(r, opts.errorBackoffMs ?? 1000)), stopped]);
      continue;
    }
    for (const lease of leases) {
      emit({ type: "leased", lease });
      const p: Promise<void> = runOne(lease).finally(() => {
        running.delete(p);
        slotFreed();
      });
      running.add(p);
    }
  }
  await Promise.all(running);
  return summary;
}
