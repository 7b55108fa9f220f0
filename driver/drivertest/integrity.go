package drivertest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/queue"
)

// testVerifyOnDequeue: a job whose stored entry was tampered with is
// withheld, marked chain_violation with the reason, and counted; the rest
// are handed out. It holds whichever side is read.
func testVerifyOnDequeue(t *testing.T, newTarget func(t *testing.T) Target) {
	var opts []queue.Options
	for _, o := range modes[1:] {
		o.VerifyOnDequeue = true
		opts = append(opts, o)
	}
	forModes(t, newTarget, opts, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		id := map[string]uuid.UUID{}
		name := map[uuid.UUID]string{}
		k := 0
		for _, c := range []struct {
			partition string
			jobs      int
		}{{"pay", 3}, {"link", 3}, {"prev", 3}, {"gen", 2}, {"ok", 2}} {
			for i := range c.jobs {
				x := fmt.Sprint(c.partition, i)
				id[x] = n.enqueue(job("acme", c.partition, k)).JobID
				name[id[x]] = x
				k++
				n.advance(time.Millisecond)
			}
		}
		tamper := func(q string, args ...any) {
			t.Helper()
			if got := h.exec(q, args...); got != 1 {
				t.Fatalf("%s changed %d rows, want 1", q, got)
			}
		}
		tamper(`UPDATE {scheduler_log} SET payload = ? WHERE job_id = ?`, `{"n":999}`, id["pay1"].String())
		tamper(`UPDATE {scheduler_log} SET link = ? WHERE job_id = ?`, hashOf("forged link"), id["link1"].String())
		tamper(`UPDATE {scheduler_log} SET prev_link = ? WHERE job_id = ?`, hashOf("forged prev_link"), id["prev1"].String())
		tamper(`UPDATE {scheduler_log} SET prev_link = ? WHERE job_id = ?`, hashOf("forged genesis"), id["gen0"].String())

		withheld := map[string]string{ // job: a word its reason must contain
			"pay1":  "payload",
			"link1": "link",
			"link2": "prev_link", // its predecessor's link no longer matches
			"prev1": "prev_link",
			"gen0":  "genesis",
		}
		var handed []string
		for range 20 {
			ls := n.dequeue(queue.DequeueOptions{Limit: 100})
			if len(ls) == 0 {
				break
			}
			for _, l := range ls {
				handed = append(handed, name[l.JobID])
				n.complete(l)
			}
		}
		var want []uuid.UUID
		for x, i := range id {
			if _, bad := withheld[x]; !bad {
				want = append(want, i)
			}
		}
		var got []uuid.UUID
		for _, x := range handed {
			got = append(got, id[x])
		}
		if !sameSet(got, want) {
			t.Errorf("handed out %v; want every job but %v", handed, withheld)
		}
		for x, word := range withheld {
			info := n.expectStatus(id[x], queue.StatusChainViolation)
			if !strings.Contains(info.LastError, word) {
				t.Errorf("%s: last_error %q does not give the reason (%s)", x, info.LastError, word)
			}
		}
		if c := counter(t, n.q.Metrics().ChainIssues); c != float64(len(withheld)) {
			t.Errorf("scheduler_chain_verification_issues_total = %v, want %d", c, len(withheld))
		}
		n.advance(time.Hour)
		if ls := n.dequeue(queue.DequeueOptions{Limit: 100}); len(ls) != 0 {
			t.Errorf("withheld jobs handed out later: %v", ids(ls))
		}
	})
}

// testVerifyNoFalsePositives: payloads of every JSON shape survive the
// round trip through the database so that verification passes: no honest
// job is ever withheld.
func testVerifyNoFalsePositives(t *testing.T, newTarget func(t *testing.T) Target) {
	var opts []queue.Options
	for _, o := range []queue.Options{modes[1], modes[3]} {
		o.VerifyOnDequeue = true
		opts = append(opts, o)
	}
	forModes(t, newTarget, opts, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		payloads := []string{
			`{"name":"Zoë 😀 ü","path":"C:\\dir\\x","quote":"\"q\"","ctl":"\u001f\t\n","ls":"\u2028\u2029","html":"<a>&amp;</a>"}`,
			`{"big":1e21,"small":5e-324,"neg":-0,"frac":0.1,"int":12345678901234567890,"exp":1.5E+300,"max":1.7976931348623157e308}`,
			`[1,"two",null,true,false,{"z":{},"a":[]},[[[]]]]`,
			`"just a string"`,
			`null`,
			`42`,
			`{"a":{"b":{"c":[1,2,{"d":"deep"}]}}}`,
			`{"\u00e9":1,"e\u0301":2,"\ud83d\ude00":3,"":4}`,
			`{"b":1,"a":2,"A":3,"_":4,"1":5,"aa":6}`,
			`{"escaped slash":"a\/b","unicode escape":"\u0041\u00DF"}`,
		}
		var want []uuid.UUID
		for i, p := range payloads {
			want = append(want, n.enqueue(queue.Job{TenantID: "acme", PartitionKey: fmt.Sprint("p", i%2), Kind: "odd", Payload: []byte(p)}).JobID)
		}
		h.verifyChains()
		got := n.dequeue(queue.DequeueOptions{Limit: 100})
		if !sameSet(ids(got), want) {
			for _, id := range want {
				if info := n.get(id); info.Status == queue.StatusChainViolation {
					t.Errorf("honest job withheld: %s (payload stored as %s)", info.LastError, info.Payload)
				}
			}
			t.Errorf("handed out %d of %d jobs", len(got), len(want))
		}
		if c := counter(t, n.q.Metrics().ChainIssues); c != 0 {
			t.Errorf("scheduler_chain_verification_issues_total = %v on honest jobs", c)
		}
	})
}

// testMultiNode: three nodes with skewed clocks append to the chains of
// one tenant at once; every chain stays linked and ordered; a node too far
// behind the chain heads is refused without writing anything.
func testMultiNode(t *testing.T, newTarget func(t *testing.T) Target) {
	single(t, newTarget, func(t *testing.T, h *harness) {
		o := modes[2]
		nodes := []*node{
			h.newNode("node-a", base, o),
			h.newNode("node-b", base-20_000, o),
			h.newNode("node-c", base+20_000, o),
		}
		const perNode = 24
		results := make([][]queue.EnqueueResult, len(nodes))
		errs := make([]error, len(nodes))
		var wg sync.WaitGroup
		for i, nd := range nodes {
			wg.Go(func() {
				for k := range perNode {
					j := queue.Job{TenantID: "shared", PartitionKey: fmt.Sprint("p", k%4), Kind: "report",
						Payload: fmt.Appendf(nil, `{"node":%q,"k":%d}`, nd.name, k)}
					r, err := nd.q.Enqueue(h.ctx, j)
					if err != nil {
						errs[i] = fmt.Errorf("%s job %d: %w", nd.name, k, err)
						return
					}
					results[i] = append(results[i], r)
					nd.advance(50 * time.Millisecond)
				}
			})
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
		}
		log := h.verifyChains()
		idx := byJob(log)
		if len(idx) != len(nodes)*perNode || len(log) != 4 {
			t.Errorf("%d entries on %d chains, want %d on 4", len(idx), len(log), len(nodes)*perNode)
		}
		for i := range nodes {
			for _, r := range results[i] {
				e, ok := idx[r.JobID]
				h.checkResult(r, e, ok)
			}
		}
		before := h.rows()
		if before != (rows{Jobs: 72, Log: 72, State: 72, Heads: 4}) {
			t.Errorf("after 72 enqueues: %v", before)
		}

		// A node ten minutes behind the heads is refused.
		d := h.newNode("node-d", base-10*60_000, o)
		_, err := d.q.Enqueue(h.ctx, job("shared", "p0", 1000))
		var de *hlc.DriftError
		if !errors.Is(err, hlc.ErrClockDrift) || !errors.As(err, &de) || de.Allowed != time.Minute {
			t.Errorf("enqueue from a node 10 minutes behind: %v; want an *hlc.DriftError allowing 1m", err)
		}
		_, err = d.q.EnqueueMany(h.ctx, []queue.Job{job("shared", "fresh", 1001), job("shared", "p1", 1002)})
		if !errors.Is(err, hlc.ErrClockDrift) {
			t.Errorf("EnqueueMany from a node 10 minutes behind: %v; want hlc.ErrClockDrift", err)
		}
		if got := h.rows(); got != before {
			t.Errorf("refused enqueues wrote something: %v, before %v", got, before)
		}
		if c := counter(t, d.q.Metrics().ClockDriftRefusals); c != 2 {
			t.Errorf("drift refusals counted %v, want 2", c)
		}
		// A wider MaxClockDriftMs lets it in, after the heads.
		if err := d.q.SetOptions(h.ctx, queue.Options{EnableHlcOrdering: true, DualWriteMode: true, MaxClockDriftMs: 15 * 60_000}); err != nil {
			t.Fatal(err)
		}
		rd := d.enqueue(job("shared", "p0", 1000))
		log = h.verifyChains()
		if es := log[chain.Key{TenantID: "shared", PartitionKey: "p0"}]; len(es) == 0 || es[len(es)-1].JobID != rd.JobID {
			t.Errorf("the admitted job is not the head of its chain")
		}

		// Reads hand out the jobs of every node in t_hlc order.
		a := nodes[0]
		a.advance(time.Hour)
		var prev string
		handed := 0
		for range 200 {
			ls := a.dequeue(queue.DequeueOptions{Limit: 1})
			if len(ls) == 0 {
				break
			}
			if ls[0].THLC <= prev {
				t.Errorf("dequeued t_hlc %s after %s", ls[0].THLC, prev)
			}
			prev = ls[0].THLC
			a.complete(ls[0])
			handed++
		}
		if handed != 73 {
			t.Errorf("handed out %d jobs, want 73", handed)
		}
	})
}

// testClosed: on a closed backend every call fails with an error, never a
// panic, and never ErrLeaseLost; nothing is half-written.
func testClosed(t *testing.T, newTarget func(t *testing.T) Target) {
	forModes(t, newTarget, []queue.Options{modes[0], modes[2]}, func(t *testing.T, h *harness, o queue.Options) {
		n := h.newNode("node-a", base, o)
		J, K := job("acme", "p", 1), job("acme", "p", 2)
		rJ := n.enqueue(J)
		l := n.one("acme", queue.DequeueOptions{LeaseFor: time.Hour})
		n.enqueue(job("acme", "q", 3))
		before := h.rows()
		if err := n.b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		ctx := h.ctx
		for _, c := range []struct {
			name string
			f    func() error
		}{
			{"Enqueue", func() error { _, err := n.q.Enqueue(ctx, K); return err }},
			{"EnqueueMany", func() error { _, err := n.q.EnqueueMany(ctx, []queue.Job{K, job("acme", "r", 4)}); return err }},
			{"Dequeue", func() error { _, err := n.q.Dequeue(ctx, queue.DequeueOptions{Limit: 5}); return err }},
			{"Complete", func() error { return n.q.Complete(ctx, l) }},
			{"Fail", func() error { _, err := n.q.Fail(ctx, l, errors.New("x"), queue.FailOptions{}); return err }},
			{"Extend", func() error { _, err := n.q.Extend(ctx, l, time.Minute); return err }},
			{"Snooze", func() error { return n.q.Snooze(ctx, l, time.Minute) }},
			{"Cancel", func() error { return n.q.Cancel(ctx, rJ.JobID, "") }},
			{"Get", func() error { _, err := n.q.Get(ctx, rJ.JobID); return err }},
			{"RescueExpired", func() error { _, _, err := n.q.RescueExpired(ctx); return err }},
			{"Backfill", func() error { _, err := n.q.Backfill(ctx, ""); return err }},
			{"RollbackDrain", func() error { _, err := n.q.RollbackDrain(ctx); return err }},
		} {
			err := noPanic(t, c.name+" on a closed backend", c.f)
			if err == nil {
				t.Errorf("%s on a closed backend succeeded", c.name)
			}
			if errors.Is(err, queue.ErrLeaseLost) || errors.Is(err, queue.ErrJobNotFound) || errors.Is(err, queue.ErrJobFinished) {
				t.Errorf("%s on a closed backend: %v; a closed database must not look like a lost lease or a missing job", c.name, err)
			}
			if err != nil && !errors.Is(err, queue.ErrClosed) {
				t.Errorf("%s on a closed backend: %v; want an error wrapping ErrClosed, as every backend answers", c.name, err)
			}
		}

		// A new handle finds exactly what was committed before the close.
		m := h.newNode("node-a2", base, o)
		if got := h.rows(); got != before {
			t.Errorf("after the close: %v, before %v", got, before)
		}
		if _, err := m.q.Get(h.ctx, jobID(t, K)); !errors.Is(err, queue.ErrJobNotFound) {
			t.Errorf("job enqueued on the closed backend: Get says %v, want ErrJobNotFound", err)
		}
		if info := m.expectStatus(rJ.JobID, queue.StatusRunning); info.LeaseToken != l.Token {
			t.Errorf("lease token %s, want %s", info.LeaseToken, l.Token)
		}
		m.complete(l) // the lease survives the other handle's close
		m.expectStatus(rJ.JobID, queue.StatusSucceeded)
		if o.Mode().WritesHlc() {
			h.verifyChains()
		}

		// A closed Queue refuses enqueues with ErrClosed.
		c := h.newNode("node-c", base, o)
		if err := c.q.Close(); err != nil {
			t.Fatalf("Queue.Close: %v", err)
		}
		if _, err := c.q.Enqueue(h.ctx, K); !errors.Is(err, queue.ErrClosed) {
			t.Errorf("Enqueue on a closed Queue: %v, want ErrClosed", err)
		}
		if err := noPanic(t, "Dequeue on a closed Queue", func() error { _, err := c.q.Dequeue(h.ctx, queue.DequeueOptions{}); return err }); err == nil {
			t.Errorf("Dequeue on a closed Queue succeeded")
		}
	})
}

// testLeaseTokens: every lease of one dequeue has a token of its own,
// driver.LeaseToken(the dequeue's secret, job id), written to both sides
// of the job, on either read order; a transition keeps it (JobInfo then
// names the lease the job ended under).
func testLeaseTokens(t *testing.T, newTarget func(t *testing.T) Target) {
	single(t, newTarget, func(t *testing.T, h *harness) {
		n := h.newNode("node-a", base, modes[1])
		for round, hlcOrder := range []bool{true, false} {
			for i := range 3 {
				n.enqueue(job("acme", "", 10*round+i))
			}
			secret := uuid.New()
			ls, err := n.b.Dequeue(h.ctx, driver.DequeueParams{HLCOrder: hlcOrder, Limit: 3, Owner: "worker-1",
				Token: secret, Now: n.now(), LeaseUntil: n.now().Add(30 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			if len(ls) != 3 {
				t.Fatalf("hlc=%v: leased %d, want 3", hlcOrder, len(ls))
			}
			seen := map[uuid.UUID]bool{}
			for _, l := range ls {
				want := driver.LeaseToken(secret, l.JobID)
				if l.Token != want || seen[l.Token] || l.Token == secret {
					t.Fatalf("hlc=%v: job %s has token %s, want its own %s", hlcOrder, l.JobID, l.Token, want)
				}
				seen[l.Token] = true
				for _, side := range [][2]string{{"jobs", "id"}, {"job_state", "job_id"}} {
					if got := h.leaseToken(side[0], side[1], l.JobID); got != want.String() {
						t.Errorf("hlc=%v: %s holds token %q for job %s, want %s", hlcOrder, side[0], got, l.JobID, want)
					}
				}
				if err := n.b.TransitionJob(h.ctx, driver.Transition{JobID: l.JobID, Token: l.Token, Status: driver.StatusSucceeded, Now: n.now()}); err != nil {
					t.Fatal(err)
				}
				if info := n.expectStatus(l.JobID, queue.StatusSucceeded); info.LeaseToken != l.Token || info.LeaseOwner != "" {
					t.Errorf("hlc=%v: finished job's lease: owner %q token %s, want none and %s", hlcOrder, info.LeaseOwner, info.LeaseToken, l.Token)
				}
			}
		}
	})
}

// testChainEntries: Dequeue with WithChain hands each lease its log entry
// as stored (position, t_hlc, link, payload hash, sequence number, and its
// predecessor's link, or the genesis marks) on either read order, so that
// queue.VerifyEntry passes honest entries and catches a tampered payload;
// the withheld job then reads as chain_violation with the reason, on both
// sides (failed on the legacy side), with its entry and stored payload.
func testChainEntries(t *testing.T, newTarget func(t *testing.T) Target) {
	single(t, newTarget, func(t *testing.T, h *harness) {
		n := h.newNode("node-a", base, modes[1])
		var jobs []uuid.UUID
		for i := range 3 {
			jobs = append(jobs, n.enqueue(job("acme", "", i)).JobID)
		}
		stored := byJob(h.verifyChains())
		tampered := jobs[2]
		if got := h.exec(`UPDATE {scheduler_log} SET payload = ? WHERE job_id = ?`, `{"n":99}`, tampered.String()); got != 1 {
			t.Fatalf("tampering changed %d rows", got)
		}
		for _, hlcOrder := range []bool{true, false} {
			ls, err := n.b.Dequeue(h.ctx, driver.DequeueParams{HLCOrder: hlcOrder, WithChain: true, Limit: 3, Owner: "worker-1",
				Token: uuid.New(), Now: n.now(), LeaseUntil: n.now().Add(30 * time.Second)})
			if err != nil {
				t.Fatal(err)
			}
			if len(ls) != 3 {
				t.Fatalf("hlc=%v: leased %d, want 3", hlcOrder, len(ls))
			}
			for _, l := range ls {
				e, s := l.Chain, stored[l.JobID]
				if e == nil || e.Pos != s.Pos || e.THLC != s.THLC || string(e.Link[:]) != string(s.Link) || string(e.PayloadHash[:]) != string(s.PayloadHash) || e.Seq == 0 {
					t.Fatalf("hlc=%v: chain entry %+v, stored %+v", hlcOrder, e, s)
				}
				if e.Pos == 0 && (!e.PrevLinkNull || e.HasPredecessor) || e.Pos > 0 && (e.PrevLinkNull || !e.HasPredecessor || e.PredecessorLink != e.PrevLink) {
					t.Errorf("hlc=%v: predecessor fields of %+v", hlcOrder, e)
				}
				reason := queue.VerifyEntry(l.JobID, e)
				if (reason != "") != (l.JobID == tampered) {
					t.Errorf("hlc=%v: entry %d: VerifyEntry = %q", hlcOrder, e.Pos, reason)
				}
				if reason != "" {
					if err := n.b.MarkChainViolation(h.ctx, driver.ViolationParams{JobID: l.JobID, Token: l.Token, Reason: reason, Now: n.now()}); err != nil {
						t.Fatal(err)
					}
					continue
				}
				if err := n.b.TransitionJob(h.ctx, driver.Transition{JobID: l.JobID, Token: l.Token, Status: driver.StatusScheduled, RunAt: n.now(), Now: n.now()}); err != nil {
					t.Fatal(err)
				}
			}
			if hlcOrder { // put the withheld job back for the legacy-read round
				h.exec("UPDATE {job_state} SET status = 'pending' WHERE job_id = ?", tampered.String())
				h.exec("UPDATE {jobs} SET status = 'pending' WHERE id = ?", tampered.String())
			}
		}
		info := n.expectStatus(tampered, queue.StatusChainViolation)
		p, _ := chain.Canonicalize(info.Payload)
		if !strings.HasPrefix(info.LastError, "chain violation: payload hash mismatch") || !info.InHLC || !info.InLegacy || info.Chain == nil || string(p) != `{"n":99}` {
			t.Errorf("violating job: %+v; want the reason, both sides, its entry and the stored payload", info)
		}
		if hist := info.AttemptErrors; len(hist) == 0 || hist[len(hist)-1].Error != info.LastError {
			t.Errorf("violating job's attempt history %+v: want the violation as its last entry (%q)", hist, info.LastError)
		}
	})
}

// testClosedBackendCalls: every method of a closed backend, called
// directly, fails with an error wrapping driver.ErrClosed (a caller's
// transaction that has ended counts as closed too), on every backend.
func testClosedBackendCalls(t *testing.T, newTarget func(t *testing.T) Target) {
	single(t, newTarget, func(t *testing.T, h *harness) {
		n := h.newNode("node-a", base, modes[1])
		rJ := n.enqueue(job("acme", "", 1))
		var tx any
		if h.tg.Begin != nil {
			btx := h.tg.Begin(t, n.b)
			if err := btx.Rollback(h.ctx); err != nil {
				t.Fatal(err)
			}
			tx = btx.Tx
		}
		if err := n.b.Close(); err != nil {
			t.Fatal(err)
		}
		ctx, now := h.ctx, n.now()
		id, token := rJ.JobID, uuid.New()
		b := driver.NewEnqueueBatch([]*driver.Prepared{n.prepared(job("acme", "", 2))}, true, true, n.clock, now)
		calls := map[string]func() error{
			"Enqueue": func() error { _, err := n.b.Enqueue(ctx, b); return err },
			"Dequeue": func() error { _, err := n.b.Dequeue(ctx, driver.DequeueParams{Limit: 1, Now: now}); return err },
			"TransitionJob": func() error {
				return n.b.TransitionJob(ctx, driver.Transition{JobID: id, Token: token, Status: driver.StatusSucceeded, Now: now})
			},
			"ExtendLease": func() error {
				return n.b.ExtendLease(ctx, driver.ExtendParams{JobID: id, Token: token, Until: now, Now: now})
			},
			"CancelJob":     func() error { return n.b.CancelJob(ctx, driver.CancelParams{JobID: id, Now: now}) },
			"RescueExpired": func() error { _, err := n.b.RescueExpired(ctx, driver.RescueParams{Now: now, Limit: 10}); return err },
			"MarkChainViolation": func() error {
				return n.b.MarkChainViolation(ctx, driver.ViolationParams{JobID: id, Token: token, Reason: "x", Now: now})
			},
			"GetJob":        func() error { _, err := n.b.GetJob(ctx, driver.JobRef{JobID: id}); return err },
			"LegacyOnly":    func() error { _, err := n.b.LegacyOnly(ctx, "", 10); return err },
			"Backfill":      func() error { _, err := n.b.Backfill(ctx, b); return err },
			"DrainToLegacy": func() error { _, err := n.b.DrainToLegacy(ctx, 10, now); return err },
			"TryLead": func() error {
				_, err := n.b.TryLead(ctx, driver.LeadParams{Name: "x", Holder: "a", Until: now, Now: now})
				return err
			},
		}
		if tx != nil {
			calls["EnqueueTx"] = func() error { _, err := n.b.EnqueueTx(ctx, tx, b); return err }
		}
		for name, call := range calls {
			if err := noPanic(t, name+" on a closed backend", call); !errors.Is(err, driver.ErrClosed) {
				t.Errorf("%s on a closed database: %v, want ErrClosed", name, err)
			}
		}
	})
}
