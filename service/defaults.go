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
)
