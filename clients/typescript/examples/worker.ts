import { JobFailure, OrdoClient, OrdoError, runWorker } from "../src/index.js";

const client = new OrdoClient({
  baseUrl: "http://127.0.0.1:8080",
  token: process.env.ORDO_TOKEN ?? "", // ordo token create --tenant acme
  tenant: "acme",
});

// Producers: one job (the key makes a second enqueue a no-op), or many, all or none.
const { job_id } = await client.enqueue({ kind: "email.send", payload: { to: "ada@example.com" } }, { idempotencyKey: "welcome-42" });
await client.enqueueMany([1, 2, 3].map((img) => ({ kind: "resize", payload: { img } })));
console.log((await client.show(job_id)).status);

// Errors carry the API's status and code.
try {
  await client.cancel(job_id);
} catch (err) {
  if (!(err instanceof OrdoError && err.code === "job_finished")) throw err;
}

// A worker: long-poll dequeue, run, then complete (or fail when the handler throws);
// the lease is extended while the handler runs. Ctrl-C stops it after the running jobs.
const stop = new AbortController();
process.once("SIGINT", () => stop.abort());
await runWorker(
  client,
  async (job, { signal }) => {
    const { img } = job.payload as { img?: number };
    if (img === undefined) throw new JobFailure("no img in the payload", { retry: false });
    await resize(img, signal); // signal aborts when the lease is lost: stop, the job runs elsewhere
  },
  { kinds: ["resize"], concurrency: 4, signal: stop.signal },
);

async function resize(img: number, signal: AbortSignal): Promise<void> {
  signal.throwIfAborted();
  console.log("resized", img);
}
