package drivertest

import (
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
)

// testDequeueFilters: Kinds and TenantID restrict what Dequeue leases.
func testDequeueFilters(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		kindOf := map[uuid.UUID]string{}
		tenantOf := map[uuid.UUID]string{}
		for i := range 8 {
			j := job([]string{"t1", "t2"}[i%2], "", i)
			j.Kind = []string{"email", "report", "sms", "report"}[i%4]
			r := n.enqueue(j)
			kindOf[r.JobID], tenantOf[r.JobID] = j.Kind, j.TenantID
			n.advance(time.Millisecond)
		}
		got := n.dequeue(queue.DequeueOptions{Kinds: []string{"email", "sms"}, Limit: 10})
		if len(got) != 4 {
			t.Errorf("Kinds email, sms: %d leases, want 4", len(got))
		}
		for _, l := range got {
			if k := kindOf[l.JobID]; k != "email" && k != "sms" || l.Kind != k {
				t.Errorf("Kinds email, sms: leased a %q job (lease says %q)", k, l.Kind)
			}
		}
		if got := n.dequeue(queue.DequeueOptions{TenantID: "t1", Limit: 10}); len(got) != 0 {
			t.Errorf("TenantID t1, whose jobs are all leased: %d leases", len(got))
		}
		got = n.dequeue(queue.DequeueOptions{TenantID: "t2", Limit: 10})
		if len(got) != 4 {
			t.Errorf("TenantID t2: %d leases, want 4", len(got))
		}
		for _, l := range got {
			if tenantOf[l.JobID] != "t2" || l.TenantID != "t2" {
				t.Errorf("TenantID t2: leased a job of %s", tenantOf[l.JobID])
			}
		}
	})
}

// testConcurrentWorkers: workers on several handles dequeueing at once
// never get the same job, and together run every job once.
func testConcurrentWorkers(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes, func(t *testing.T, h *harness, o queue.Options) {
		const jobs, workers = 120, 4
		producer := h.newNode("node-a", base, o)
		batch := make([]queue.Job, jobs)
		for i := range batch {
			batch[i] = job(fmt.Sprint("t", i%3), fmt.Sprint("p", i%5), i)
		}
		producer.enqueueMany(batch)
		var mu sync.Mutex
		handed := map[uuid.UUID]int{}
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			// Each worker its own handle and queue, as separate processes.
			n := h.newNode(fmt.Sprint("worker-", w), base, o)
			wg.Go(func() {
				for range 1000 {
					ls, err := n.q.Dequeue(h.ctx, queue.DequeueOptions{Limit: 3, LeaseFor: time.Hour})
					if err != nil {
						errs[w] = err
						return
					}
					if len(ls) == 0 {
						return
					}
					mu.Lock()
					for _, l := range ls {
						handed[l.JobID]++
					}
					mu.Unlock()
					for _, l := range ls {
						if err := n.q.Complete(h.ctx, l); err != nil {
							errs[w] = fmt.Errorf("Complete: %w", err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		for w, err := range errs {
			if err != nil {
				t.Errorf("worker %d: %v", w, err)
			}
		}
		if len(handed) != jobs {
			t.Errorf("%d distinct jobs handed out, want %d", len(handed), jobs)
		}
		for id, c := range handed {
			if c != 1 {
				t.Errorf("job %s handed out %d times", id, c)
			}
		}
		if l, s := h.unfinished(); l+s != 0 {
			t.Errorf("unfinished: %d legacy, %d hlc", l, s)
		}
	})
}

// testStrictConcurrent: with strict partitions, workers racing never run
// two jobs of a partition at once, and run each partition in chain order.
func testStrictConcurrent(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, modes[2:], func(t *testing.T, h *harness, o queue.Options) {
		const partitions, perPartition, workers = 3, 8, 4
		producer := h.newNode("node-a", base, o)
		pos := map[uuid.UUID][2]int{} // partition, index in it
		for i := range partitions * perPartition {
			p := i % partitions
			r := producer.enqueue(job("acme", fmt.Sprint("p", p), i))
			pos[r.JobID] = [2]int{p, i / partitions}
			producer.advance(time.Millisecond)
		}
		var mu sync.Mutex
		running := make([]bool, partitions)
		next := make([]int, partitions)
		done := 0
		var problems []string
		errs := make([]error, workers)
		var wg sync.WaitGroup
		for w := range workers {
			n := h.newNode(fmt.Sprint("worker-", w), base+time.Minute.Milliseconds(), o) // every job due
			wg.Go(func() {
				for range 5000 {
					mu.Lock()
					finished := done == partitions*perPartition
					mu.Unlock()
					if finished {
						return
					}
					ls, err := n.q.Dequeue(h.ctx, queue.DequeueOptions{Limit: 2, StrictPartitions: true, LeaseFor: time.Hour})
					if err != nil {
						errs[w] = err
						return
					}
					if len(ls) == 0 {
						runtime.Gosched()
						continue
					}
					mu.Lock()
					for _, l := range ls {
						pp := pos[l.JobID]
						if running[pp[0]] {
							problems = append(problems, fmt.Sprintf("p%d: job %d leased while another job of the partition runs", pp[0], pp[1]))
						}
						if pp[1] != next[pp[0]] {
							problems = append(problems, fmt.Sprintf("p%d: job %d leased, next in chain order is %d", pp[0], pp[1], next[pp[0]]))
						}
						running[pp[0]] = true
					}
					mu.Unlock()
					for _, l := range ls {
						pp := pos[l.JobID]
						mu.Lock() // released before the commit, so no false alarm
						running[pp[0]] = false
						next[pp[0]] = pp[1] + 1
						done++
						mu.Unlock()
						if err := n.q.Complete(h.ctx, l); err != nil {
							errs[w] = err
							return
						}
					}
				}
			})
		}
		wg.Wait()
		for w, err := range errs {
			if err != nil {
				t.Errorf("worker %d: %v", w, err)
			}
		}
		for _, p := range problems {
			t.Error(p)
		}
		if done != partitions*perPartition {
			t.Errorf("ran %d jobs, want %d", done, partitions*perPartition)
		}
	})
}

// testFairTenants: FairTenants shares a batch round-robin between tenants,
// each tenant's earliest jobs first.
func testFairTenants(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, []queue.Options{modes[0], modes[3]}, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		idx := map[uuid.UUID]int{}
		tenantOf := map[uuid.UUID]string{}
		count := map[string]int{"big": 10, "mid": 2, "one": 1}
		for _, tenant := range []string{"big", "mid", "one"} { // big's backlog is oldest
			for i := range count[tenant] {
				r := n.enqueue(job(tenant, "", i))
				idx[r.JobID], tenantOf[r.JobID] = i, tenant
				n.advance(time.Millisecond)
			}
		}
		got := n.dequeue(queue.DequeueOptions{Limit: 6, FairTenants: true})
		per := map[string][]int{}
		for _, l := range got {
			per[tenantOf[l.JobID]] = append(per[tenantOf[l.JobID]], idx[l.JobID])
		}
		if len(got) != 6 || len(per["big"]) != 3 || len(per["mid"]) != 2 || len(per["one"]) != 1 {
			t.Fatalf("FairTenants, Limit 6: %v; want 3 of big, 2 of mid, 1 of one", per)
		}
		for tenant, is := range per {
			seen := map[int]bool{}
			for _, i := range is {
				seen[i] = true
			}
			for i := range len(is) {
				if !seen[i] {
					t.Errorf("tenant %s: got jobs %v, want its earliest", tenant, is)
					break
				}
			}
		}
		// Without FairTenants the oldest backlog comes first.
		got = n.dequeue(queue.DequeueOptions{Limit: 3})
		for _, l := range got {
			if tenantOf[l.JobID] != "big" {
				t.Errorf("plain dequeue gave a job of %s before big's backlog", tenantOf[l.JobID])
			}
		}
		// FairAfter turns the round: it starts with the tenant after the
		// one named, wrapping around, so consecutive small fetches take
		// turns. Only big has jobs left (4); mid and one get new ones.
		addJobs := func(i int, tenants ...string) {
			for _, tenant := range tenants {
				r := n.enqueue(job(tenant, "", i))
				tenantOf[r.JobID] = tenant
				n.advance(time.Millisecond)
			}
		}
		fetch := func(after string, want ...string) {
			t.Helper()
			var tenants []string
			for _, l := range n.dequeue(queue.DequeueOptions{Limit: 2, FairTenants: true, FairAfter: after}) {
				tenants = append(tenants, tenantOf[l.JobID])
			}
			slices.Sort(tenants)
			if !slices.Equal(tenants, want) {
				t.Fatalf("FairTenants, Limit 2, FairAfter %q: tenants %v; want %v", after, tenants, want)
			}
		}
		addJobs(100, "mid", "one")
		fetch("big", "mid", "one") // turns: mid, one, big
		addJobs(101, "mid", "one")
		fetch("one", "big", "mid") // wraps: big, mid, one
		fetch("zzz", "big", "one") // after every tenant: from the first
	})
}

// testLeadership: one leader per name at a time, renewal by the holder,
// takeover after expiry, and resignation.
func testLeadership(t *testing.T, newTarget func(t *testing.T) Target) {
	single(t, newTarget, func(t *testing.T, h *harness) {
		a, b := h.tg.Open(t), h.tg.Open(t)
		now := time.UnixMilli(base)
		lead := func(l driver.Leadership, holder string, until, at time.Time, want bool) {
			t.Helper()
			got, err := l.TryLead(h.ctx, driver.LeadParams{Name: "rescuer", Holder: holder, Until: until, Now: at})
			if err != nil || got != want {
				t.Errorf("TryLead(%s) at %v: %v, %v; want %v", holder, at.Sub(now), got, err, want)
			}
		}
		lead(a, "node-a", now.Add(10*time.Second), now, true)
		lead(b, "node-b", now.Add(10*time.Second), now.Add(time.Second), false)
		lead(a, "node-a", now.Add(20*time.Second), now.Add(5*time.Second), true) // renew
		lead(b, "node-b", now.Add(30*time.Second), now.Add(15*time.Second), false)
		lead(b, "node-b", now.Add(40*time.Second), now.Add(21*time.Second), true) // a's lease expired
		lead(a, "node-a", now.Add(40*time.Second), now.Add(22*time.Second), false)
		if got, err := a.TryLead(h.ctx, driver.LeadParams{Name: "checkpoint", Holder: "node-a", Until: now.Add(time.Minute), Now: now.Add(22 * time.Second)}); err != nil || !got {
			t.Errorf("another name is led independently: %v, %v", got, err)
		}
		if err := a.Resign(h.ctx, "rescuer", "node-a"); err != nil { // not the holder: no effect
			t.Fatal(err)
		}
		lead(a, "node-a", now.Add(40*time.Second), now.Add(23*time.Second), false)
		if err := b.Resign(h.ctx, "rescuer", "node-b"); err != nil {
			t.Fatal(err)
		}
		lead(a, "node-a", now.Add(40*time.Second), now.Add(24*time.Second), true)
	})
}

// testConcurrentProducersAndWorkers: producers (group commit) and workers
// (one of them with strict partitions) run at once on one queue whose
// clock persists its bound in the backend's own HLC state store, with the
// wall clock moving so the bound is persisted again and again while
// transactions run: every job runs exactly once, every chain verifies, and
// the persisted bound stays above the last timestamp issued.
func testConcurrentProducersAndWorkers(t *testing.T, newTarget func(t *testing.T) Target) {
	opts := modes[2]
	opts.VerifyOnDequeue = true
	forModes(t, newTarget, []queue.Options{opts}, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newPersistingNode("node-a", base, o)
		const producers, perProducer, workers = 4, 60, 3
		// A worker that finds nothing waits for the next enqueue, or for
		// the producers to finish: no polling.
		wake := make(chan struct{}, 1)
		produced := make(chan struct{})
		var mu sync.Mutex
		ran := map[uuid.UUID]int{}
		perrs := make([]error, producers)
		werrs := make([]error, workers)
		var pwg, wwg sync.WaitGroup
		for p := range producers {
			pwg.Go(func() {
				for i := range perProducer {
					n.advance(50 * time.Millisecond)
					_, err := n.q.Enqueue(h.ctx, queue.Job{TenantID: fmt.Sprint("t", p%2), PartitionKey: fmt.Sprint("p", i%3), Kind: "k",
						Payload: fmt.Appendf(nil, `{"p":%d,"i":%d}`, p, i)})
					if err != nil {
						perrs[p] = err
						return
					}
					select {
					case wake <- struct{}{}:
					default:
					}
				}
			})
		}
		for w := range workers {
			wwg.Go(func() {
				finishing := false
				for {
					ls, err := n.q.Dequeue(h.ctx, queue.DequeueOptions{Owner: fmt.Sprint("w", w), Limit: 5, StrictPartitions: w == 0, LeaseFor: time.Hour})
					if err != nil {
						werrs[w] = err
						return
					}
					for _, l := range ls {
						if err := n.q.Complete(h.ctx, l); err != nil {
							werrs[w] = err
							return
						}
						mu.Lock()
						ran[l.JobID]++
						mu.Unlock()
					}
					if len(ls) > 0 {
						continue
					}
					if finishing {
						return // nothing left after the producers finished
					}
					select {
					case <-wake:
					case <-produced:
						finishing = true
					case <-h.ctx.Done():
						werrs[w] = h.ctx.Err()
						return
					}
				}
			})
		}
		pwg.Wait()
		close(produced)
		wwg.Wait()
		for p, err := range perrs {
			if err != nil {
				t.Errorf("producer %d: %v", p, err)
			}
		}
		for w, err := range werrs {
			if err != nil {
				t.Errorf("worker %d: %v", w, err)
			}
		}
		if len(ran) != producers*perProducer {
			t.Errorf("%d distinct jobs ran, want %d", len(ran), producers*perProducer)
		}
		for id, c := range ran {
			if c != 1 {
				t.Errorf("job %s ran %d times", id, c)
			}
		}
		if l, s := h.unfinished(); l+s != 0 {
			t.Errorf("unfinished: %d legacy, %d hlc", l, s)
		}
		h.verifyChains()
		if c := counter(t, n.q.Metrics().ChainIssues); c != 0 {
			t.Errorf("scheduler_chain_verification_issues_total = %v on honest jobs", c)
		}
		bound, err := n.b.HLCState().Load(h.ctx, "node-a")
		if err != nil || bound <= n.clock.Current().Physical {
			t.Errorf("persisted bound %d (%v), last timestamp %v; want the bound above it", bound, err, n.clock.Current())
		}
	})
}
