package worker

import "slices"

// QueueInfo describes one of a client's queues, for an operator's view
// (the dashboard's queues page): its configuration and the jobs it is
// running now.
type QueueInfo struct {
	Name             string
	MaxWorkers       int      // the queue's cap, within the client's
	Kinds            []string // the kinds it fetches, sorted; nil with AllKinds
	AllKinds         bool
	Tenants          TenantPolicy
	StrictPartitions bool
	Running          int // its jobs running on this client now (leased, not yet finished)
}

// Queues describes the client's queues that fetch (a configured queue
// with no kind registered to it has nothing to fetch and is left out),
// sorted by name.
func (c *Client) Queues() []QueueInfo {
	// The jobs the client holds, not its slots: a fetch in flight
	// reserves slots for jobs it may not get.
	running := map[string]int{}
	c.runMu.Lock()
	for _, rj := range c.jobs {
		running[rj.queue]++
	}
	c.runMu.Unlock()
	out := make([]QueueInfo, 0, len(c.queues))
	for _, qs := range c.queues {
		out = append(out, QueueInfo{Name: qs.name, MaxWorkers: qs.max, Kinds: slices.Clone(qs.kinds), AllKinds: qs.cfg.AllKinds,
			Tenants: qs.cfg.Tenants, StrictPartitions: qs.cfg.StrictPartitions, Running: running[qs.name]})
	}
	return out
}

// MaxWorkers is the cap on the running jobs of the whole client.
func (c *Client) MaxWorkers() int { return c.cfg.MaxWorkers }

// PeriodicJobs returns the client's periodic jobs, in the order of
// Config.PeriodicJobs.
func (c *Client) PeriodicJobs() []PeriodicJob {
	out := make([]PeriodicJob, len(c.periodic))
	for i, p := range c.periodic {
		out[i] = p.job
	}
	return out
}

// String names the policy as the dashboard shows it.
func (p TenantPolicy) String() string {
	if p == TenantsFIFO {
		return "fifo"
	}
	return "fair"
}
