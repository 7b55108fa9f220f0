// Package worker runs Go handlers on the jobs of an ordo queue, reliably:
// typed handlers registered by kind, concurrency limits, fair sharing
// between tenants, retries with backoff, timeouts, lease heartbeats,
// crash recovery, periodic jobs and graceful shutdown.
//
// A job's arguments are a struct with a Kind method; its handler is a
// Worker of that type:
//
//	type EmailArgs struct{ To string `json:"to"` }
//	func (EmailArgs) Kind() string { return "email.send" }
//
//	workers := worker.NewWorkers()
//	worker.AddWorker(workers, worker.WorkFunc[EmailArgs](func(ctx context.Context, job *worker.Job[EmailArgs]) error {
//		return send(ctx, job.Args.To)
//	}))
//	client, err := worker.NewClient(q, worker.Config{Workers: workers})
//	err = client.Start(ctx)
//	_, err = client.Insert(ctx, "acme", EmailArgs{To: "ada@example.com"}, nil)
//	...
//	err = client.Stop(ctx)
//
// # Delivery
//
// Jobs run at least once. A job's outcome is recorded after its handler
// returns, fenced by its lease: if the process dies in between, the job
// runs again once its lease expires. Handlers should therefore be
// idempotent, or key their effects by job id, or record the outcome in
// their own transaction with CompleteTx, which closes that window: the
// handler's writes and the job's completion commit or roll back together.
//
// # Outcomes
//
// A handler returning nil completes its job. Any other error fails the
// attempt: it is recorded (the job keeps its last error whole and its
// last 20 attempts' errors, JobInfo.AttemptErrors; EventJobFailed carries
// every one) and the job retried after the queue's exponential
// backoff with jitter, or the kind's KindOptions.Backoff, until its max
// attempts (queue default 25; KindOptions.MaxAttempts for jobs inserted
// through Client.Insert; InsertOpts.MaxAttempts per job), after which it
// ends failed. NoRetry fails it for good at once, JobCancel cancels it,
// JobSnooze runs it again later without counting the attempt. A panic is
// recovered and fails the attempt with the panic value and stack. A job
// whose kind this client has no worker for, or whose payload does not
// decode into the handler's type, fails without retry: retrying cannot
// help, and failing beats blocking the queue.
//
// # Timeouts and abandonment
//
// Every attempt has a timeout: the args' Timeout method, else
// KindOptions.Timeout, else Config.DefaultTimeout (one minute; negative
// values mean none). The handler's context ends at the timeout; a handler
// that returns then fails its attempt with a *TimeoutError ("timed out
// after X"). One that ignores its context is abandoned after a further
// Config.TimeoutGrace: the attempt fails the same way, its slot is freed,
// and its goroutine is left to finish on its own, its result discarded. Go
// cannot stop a goroutine; the alternative, waiting, would let one stuck
// handler hold a slot, and its job, forever. The same grace applies to a
// handler whose lease was lost.
//
// # Concurrency and fairness
//
// Config.MaxWorkers caps the jobs a client runs at once. Kinds are grouped
// into client queues (KindOptions.Queue, Config.Queues), each with its own
// MaxWorkers, so slow kinds cannot take every slot from fast ones. Each
// queue fetches only its own kinds (unless QueueConfig.AllKinds), so
// services with different workers can share one database.
//
// A queue fetches as many jobs as it has free slots, in one transaction,
// when woken, when slots free up after a full fetch, and at least every
// PollInterval, but never twice within FetchCooldown, so that under load
// freed slots are refilled in batches. By default (TenantsFair) every
// fetch is shared round-robin between the tenants that have jobs
// available: first every tenant's earliest job, then every tenant's
// second, and so on. A tenant with a backlog of ten thousand jobs thus
// gets about as many of each batch as a tenant with ten, not all of them.
// The policy is per fetch: when slots free up one at a time (few slots,
// long jobs), a fetch of one job goes, with the current backends, to the
// tenant whose job is oldest, which is FIFO; fairness then needs the
// backends to rotate the tenant each round starts with. TenantsFIFO takes
// jobs in queue order whatever their tenant.
//
// QueueConfig.StrictPartitions runs at most one job per (tenant,
// partition) at a time, across all clients, in chain order: a job waits
// until its predecessor has finished, retries included.
//
// # Leases, heartbeats and crashes
//
// A fetched job is leased for Config.LeaseFor. While its handler runs the
// lease is extended every HeartbeatInterval (LeaseFor/3 by default), so a
// long job keeps it however long it runs, and a crashed worker's jobs come
// back LeaseFor after its last heartbeat, not after some fixed rescue
// delay. If an extension finds the lease gone (it expired and was rescued,
// or the job was cancelled), the handler's context is cancelled with
// queue.ErrLeaseLost, and nothing the handler then returns is recorded:
// every state change is fenced by the lease, so a worker that lost its
// lease can neither complete nor fail a job someone else now runs
// (EventLeaseLost).
//
// A handler's outcome whose write fails for a reason other than the job's
// own state (the database restarting, a dropped connection) is written
// again, with backoff from 50ms to 1s, for up to 30s (EventOutcomeRetrying
// once per job), so a database outage of a few seconds re-runs nothing. At
// most MaxWorkers outcomes wait like this; fetching waits with them. The
// retried write is fenced like the first: if a rescue gave the job away
// meanwhile, it is refused, never applied twice.
//
// # Maintenance and leadership
//
// One client at a time, the leader, returns jobs with expired leases to
// the queue (queue.RescueExpired), deletes the state of jobs finished
// longer ago than Config.Retention keeps them (queue.Prune; their log
// entries stay) and enqueues periodic jobs, every MaintenanceInterval. Leadership is a lease on the backend
// (driver.Leadership, named "ordo.maintenance"), renewed every round and
// lapsing LeaderTTL after the leader's last renewal; Stop resigns it. A
// backend without Leadership makes every client do maintenance, which is
// safe, only redundant: rescue is idempotent and periodic jobs are
// deduplicated.
//
// # Periodic jobs
//
// Config.PeriodicJobs are enqueued at each occurrence of their Schedule
// (Every for fixed intervals aligned to the Unix epoch, Cron for cron
// expressions as github.com/robfig/cron/v3 reads them: five fields or six
// with seconds, @daily and the other descriptors, CRON_TZ=, and @every as
// Every). Each occurrence's job has an idempotency
// key made of the schedule's name and the occurrence's time, so its job id
// is the same whoever enqueues it: two leaders overlapping (during a
// handover, or a network partition) still make one job per occurrence. A
// new leader looks back over the handover window, or PeriodicJob.CatchUp,
// and enqueues the most recent occurrence it finds; older missed
// occurrences are skipped rather than run in a burst.
//
// # Wakeups
//
// A queue is woken at once by enqueues through the same *queue.Queue
// (queue.Subscribe) and, when the backend offers it (PostgreSQL
// LISTEN/NOTIFY), by enqueues from other processes. Polling every
// PollInterval catches the rest: scheduled jobs whose time has come,
// rescued jobs, lost notifications. Behind PgBouncer in transaction mode,
// where LISTEN does not work, set Config.PollOnly.
//
// # Shutdown
//
// Stop stops fetching and waits for running jobs until its context ends;
// then it cancels their contexts and hands them back to the queue, pending
// again at once with the attempt not counted, so another client picks them
// up without waiting for their leases to expire.
//
// # Time
//
// Everything the queue stores (run-at, retry times, lease expiries) is on
// the queue's clock (queue.Config.Now); leadership leases and periodic
// occurrences are on Config.Now, which defaults to the queue's HLC wall
// clock, so a test that drives the queue with an hlc.ManualClock drives
// the client too. The client's own timers (poll, heartbeat, maintenance,
// timeouts) run in real time and are all configurable, so tests make them
// short instead of sleeping.
//
// # Events
//
// Config.OnEvent receives every Event (job started, succeeded, failed with
// its error and whether it will be retried, cancelled, snoozed, released,
// lease extended or lost; leadership, rescues, periodic enqueues),
// synchronously; Client.Subscribe delivers them on a channel that drops
// what a slow reader cannot take. Logs go to Config.Logger (log/slog).
//
// # Testing handlers
//
// Work runs one job through a handler without a database, as a client
// would (JSON round trip, timeout, panic recovery), and returns its
// classified Result; WorkJob does the same for a job built by hand.
package worker
