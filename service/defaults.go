package service

import "time"

// The service's own timings, in one place (what an operator sets is in
// config.Defaults).
const (
	// nodeReportInterval is how often the service writes its clock to
	// scheduler.nodes; a clock refusal is reported at the next check, at
	// most refusalCheckInterval later.
	nodeReportInterval   = 5 * time.Second
	refusalCheckInterval = time.Second
	// scrapeTimeout bounds the count query of one /metrics scrape.
	scrapeTimeout = 5 * time.Second
	// DemoTokenLifetime is how long `ordo serve --demo`'s admin token
	// works if the demo is killed before it revokes it on its way out.
	DemoTokenLifetime = 24 * time.Hour
	// readyTimeout bounds the database checks of one /readyz.
	readyTimeout = 3 * time.Second
	// MaxDequeueWait bounds a dequeue's wait_seconds (long poll); a wait
	// is also cut to half of Ordo:Http:WriteTimeout, so that the answer
	// is written before the server gives up on it.
	MaxDequeueWait = 30 * time.Second
	// longPollRecheck is how often a waiting dequeue looks again without
	// a wakeup: scheduled jobs come due without one, and SQLite has no
	// cross-process notification.
	longPollRecheck = time.Second
	// logPartitionsInterval is how often the leader makes the
	// scheduler_log partitions of coming periods (PostgreSQL,
	// Ordo:Database:LogPartitionPeriod): they are made periods ahead, so
	// an hour is often enough, and a round that finds them made costs a
	// few catalog reads.
	logPartitionsInterval = time.Hour
	// logPartitionsRetry is how soon a round that failed is tried again
	// (its lock on the default partition is waited for briefly, so a
	// busy moment can make it fail).
	logPartitionsRetry = time.Minute
)

// The tlog-tiles routes (tlog.go): what they let caches keep, in seconds,
// and how many full tiles a node keeps in memory.
const (
	// tlogFullTileMaxAge: a full tile or entry bundle never changes (C2SP
	// tlog-tiles: "immutable", long-lived caching); a year, with
	// immutable.
	tlogFullTileMaxAge = 365 * 24 * 60 * 60
	// tlogPartialTileMaxAge: a partial tile says the same for as long as
	// it is served, but it is wanted only until the tree fills it; caches
	// need not keep it for long.
	tlogPartialTileMaxAge = 60
	// tlogCheckpointMaxAge: the checkpoint changes with every signing
	// (Ordo:Audit:CheckpointInterval, 10 s by default); the spec asks for
	// no caching beyond a few seconds.
	tlogCheckpointMaxAge = 5
	// tlogCacheTiles bounds the full tiles kept in memory (audit.Tiles):
	// about 8.5 KiB each, so under 9 MiB.
	tlogCacheTiles = 1024
)
