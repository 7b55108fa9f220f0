package audit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/bits"
	"time"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/metrics"
)

// The periodic verification (the guide's "check chain integrity
// periodically", done by the service): every round checks, for every
// chain, only the entries after the position an earlier round verified,
// and joins them to it, so its cost follows the new entries, not the
// history.
//
// Invariants:
//   - A chain's progress (driver.ChainVerification) moves only after a
//     round that found nothing wrong; a round that finds an issue leaves
//     it where it was, so every later round reads the same entries again
//     and reports the issue again until the chain is repaired.
//   - The first entry a round reads is joined to the last one verified:
//     its chain_pos follows, its prev_link is that entry's link and its
//     t_hlc is after that entry's (genesis rules for chain_pos 0).
//   - The Merkle tree is continued from the stored right edge of the
//     verified entries' tree, never from the stored tree hashes (a cache),
//     so the root the round computes at a signed checkpoint's size is the
//     entries' own root, and must be the signed one.
//   - Entries before the verified position are not read again: a change
//     to them is found by the full verification (Verifier, `ordo verify`),
//     which stays the on-demand check.

// VerifierLeadershipName is the duty the periodic verifier leads
// (driver.Leadership): one node verifies at a time.
const VerifierLeadershipName = "ordo.verifier"

// DefaultVerifyInterval is how often the service verifies new chain
// entries unless Ordo:Audit:VerifyInterval says otherwise.
const DefaultVerifyInterval = time.Minute

// DefaultMaxRoundEntries bounds the entries one round reads of one chain;
// a chain further behind (the first round on an existing database) is
// caught up over several rounds.
const DefaultMaxRoundEntries = 100_000

// maxStoredRoundIssues bounds the issues kept with a chain's progress.
const maxStoredRoundIssues = 20

// duplicateLookupChunk bounds the job ids of one duplicate lookup (SQLite
// binds each as a parameter).
const duplicateLookupChunk = 1000

// IncrementalVerifier verifies the entries appended to every chain since
// its previous round. Only Store is required.
type IncrementalVerifier struct {
	Store driver.AuditStore
	// Metrics counts every chain checked in
	// scheduler_chain_verifications_total{result} and every issue in
	// scheduler_chain_verification_issues_total, each round: a chain that
	// stays broken is counted invalid again every round.
	Metrics *metrics.Metrics
	// Key verifies the signatures of stored checkpoints; without it their
	// roots are still compared with the entries.
	Key *PublicKey
	// Leader elects one verifier among the nodes; nil runs
	// unconditionally.
	Leader   driver.Leadership
	Holder   string        // this node's id, for the lease
	LeaseFor time.Duration // default 2 * Interval, at least a minute
	Interval time.Duration // Run's period; default DefaultVerifyInterval
	// Now is the wall clock for leases and the progress rows; default
	// time.Now.
	Now func() time.Time
	// MaxRoundEntries bounds the entries read per chain and round
	// (default DefaultMaxRoundEntries).
	MaxRoundEntries int64
	// MaxIssues bounds the issues kept per chain (default 1000).
	MaxIssues int
	Logger    *slog.Logger
	// OnRound, if set, is called after every round Run makes, with its
	// outcome (the service records it for the dashboard; tests wait on
	// it).
	OnRound func(*Round, error)
}

// Round is the outcome of one periodic verification round.
type Round struct {
	Led    bool // this node held the lease (false: it did nothing)
	At     time.Time
	Chains []*ChainRound
	// EntriesChecked counts the entries the round read, IssueCount the
	// issues it found (again, for a chain that stays broken).
	EntriesChecked int64
	IssueCount     int64
	Valid          bool
}

// ChainRound is what one round did with one chain.
type ChainRound struct {
	ChainResult
	// From is the first chain_pos the round read; VerifiedSize the
	// entries verified after it (From plus the entries read when the round
	// was valid, From when it found an issue).
	From         int64 `json:"from"`
	VerifiedSize int64 `json:"verified_size"`
	// Behind is true when the round stopped at MaxRoundEntries with more
	// entries to read.
	Behind bool `json:"behind"`
}

// behind reports whether a chain still has entries the round did not read.
func (r *Round) behind() bool {
	for _, c := range r.Chains {
		if c.Behind {
			return true
		}
	}
	return false
}

// Tenants groups the round's chains by tenant, in the order they came.
func (r *Round) Tenants() (tenants []string, results map[string]*Result) {
	results = map[string]*Result{}
	for _, c := range r.Chains {
		res := results[c.TenantID]
		if res == nil {
			res = &Result{Valid: true, Issues: []Issue{}, Chains: []*ChainResult{}}
			results[c.TenantID] = res
			tenants = append(tenants, c.TenantID)
		}
		res.add(&c.ChainResult)
	}
	return tenants, results
}

func (v *IncrementalVerifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *IncrementalVerifier) log() *slog.Logger {
	if v.Logger != nil {
		return v.Logger
	}
	return slog.New(slog.DiscardHandler)
}

func (v *IncrementalVerifier) interval() time.Duration {
	if v.Interval > 0 {
		return v.Interval
	}
	return DefaultVerifyInterval
}

// RunOnce verifies what every chain gained since its last round, records
// each chain's progress and verdict, counts them in the metrics and logs
// every issue at ERROR. An error means the round could not be done (the
// chains done before it are recorded).
func (v *IncrementalVerifier) RunOnce(ctx context.Context) (*Round, error) {
	now := v.now()
	round := &Round{At: now, Valid: true}
	if v.Leader != nil {
		lease := v.LeaseFor
		if lease <= 0 {
			lease = max(2*v.interval(), time.Minute)
		}
		ok, err := v.Leader.TryLead(ctx, driver.LeadParams{Name: VerifierLeadershipName, Holder: v.Holder, Until: now.Add(lease), Now: now})
		switch {
		case errors.Is(err, driver.ErrNotSupported):
			// No election on this backend: every node verifies, which only
			// repeats work.
		case err != nil || !ok:
			return round, err
		}
	}
	round.Led = true
	progress, err := v.Store.ChainVerifications(ctx, "")
	if err != nil {
		return round, err
	}
	for i := range progress {
		c, err := v.verifyChain(ctx, &progress[i], now)
		if err != nil {
			return round, err
		}
		round.Chains = append(round.Chains, c)
		round.EntriesChecked += c.EntriesChecked
		round.IssueCount += c.IssueCount
		round.Valid = round.Valid && c.Valid
	}
	return round, nil
}

// Run calls RunOnce every Interval until ctx ends, then resigns the lease.
// A round that left a chain behind (MaxRoundEntries) is followed by the
// next at once, so a long history is caught up in bounded rounds.
func (v *IncrementalVerifier) Run(ctx context.Context) error {
	t := time.NewTicker(v.interval())
	defer t.Stop()
	for {
		r, err := v.RunOnce(ctx)
		if ctx.Err() != nil {
			break
		}
		if err != nil {
			v.log().Error("periodic chain verification failed; trying again next round", "error", err)
		}
		if v.OnRound != nil {
			v.OnRound(r, err)
		}
		if err == nil && r.behind() {
			continue
		}
		select {
		case <-ctx.Done():
		case <-t.C:
			continue
		}
		break
	}
	if v.Leader != nil {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		_ = v.Leader.Resign(rctx, VerifierLeadershipName, v.Holder)
		cancel()
	}
	return nil
}

// verifyChain runs one round on the chain of p and stores its outcome.
func (v *IncrementalVerifier) verifyChain(ctx context.Context, p *driver.ChainVerification, now time.Time) (*ChainRound, error) {
	k := p.Key
	if !edgeFits(p) {
		// The row does not describe a tree of its size (changed by hand,
		// or by a bug): start again from the genesis rather than trust it.
		v.log().Warn("periodic verification: the stored progress is inconsistent; verifying the chain from its genesis",
			"tenant_id", k.TenantID, "partition_key", k.PartitionKey, "verified_size", p.VerifiedSize, "tree_edge", len(p.TreeEdge))
		*p = driver.ChainVerification{Key: k}
	}
	if start, err := droppedStart(ctx, v.Store, p); err != nil {
		return nil, v.fail(k, err)
	} else if start != nil {
		*p = *start
	}
	maxEntries := v.MaxRoundEntries
	if maxEntries <= 0 {
		maxEntries = DefaultMaxRoundEntries
	}
	base := &Verifier{Store: v.Store, Key: v.Key, MaxIssues: v.MaxIssues}
	cv := &chainVerifier{v: base, key: k, firstGap: -1, resume: true, from: p.VerifiedSize, to: p.VerifiedSize + maxEntries,
		res: &ChainResult{TenantID: k.TenantID, PartitionKey: k.PartitionKey, Issues: []Issue{}}}
	cv.maxIssue = base.MaxIssues
	if cv.maxIssue <= 0 {
		cv.maxIssue = 1000
	}
	cv.partOK = chain.ValidateTenantID(k.TenantID) == nil && chain.ValidatePartitionKey(k.PartitionKey) == nil
	if p.VerifiedSize > 0 {
		cv.lastPos, cv.lastLink, cv.lastTHLC = p.VerifiedSize-1, p.VerifiedLink, []byte(p.VerifiedTHLC)
	}
	cv.tree = restoreTree(p.VerifiedSize, p.TreeEdge)
	rootBefore := cv.tree.root()

	head, hasHead, err := v.Store.Head(ctx, k)
	if err != nil {
		return nil, v.fail(k, err)
	}
	cv.headPos = -1
	if hasHead {
		cv.headPos = head.EntryCount - 1
	}
	cp, err := v.latestCheckpoint(ctx, cv, p)
	if err != nil {
		return nil, v.fail(k, err)
	}
	if cp != nil && cp.size > p.VerifiedSize {
		cv.cps = []checkpointCheck{*cp}
	}
	if err := cv.stream(ctx); err != nil {
		return nil, v.fail(k, err)
	}
	end := p.VerifiedSize + cv.n // one past the last chain_pos read
	behind := cv.n == maxEntries
	cv.res.EntriesChecked = cv.n
	v.checkHead(cv, p, head, hasHead, end, behind)
	if err := v.checkNewDuplicates(ctx, cv); err != nil {
		return nil, v.fail(k, err)
	}
	matched := p.CheckpointSize
	if cp != nil {
		ok, err := v.checkCheckpoint(ctx, cv, p, cp, rootBefore, end, behind)
		if err != nil {
			return nil, v.fail(k, err)
		}
		if ok {
			matched = max(matched, cp.size)
		}
	}

	r := cv.res
	r.Valid = r.IssueCount == 0
	out := &ChainRound{ChainResult: *r, From: p.VerifiedSize, VerifiedSize: p.VerifiedSize, Behind: behind && r.Valid}
	next := *p
	next.LastRunAt, next.LastValid, next.LastEntries, next.LastIssueCount = now, r.Valid, cv.n, r.IssueCount
	if r.Valid {
		next.VerifiedSize, next.CheckpointSize = end, matched
		if cv.n > 0 {
			next.VerifiedLink, next.VerifiedTHLC = cv.lastLink, string(cv.lastTHLC)
			next.TreeEdge = append([]tlog.Hash(nil), cv.tree.hashes...)
		}
		out.VerifiedSize = end
	}
	issues := r.Issues
	if len(issues) > maxStoredRoundIssues {
		issues = issues[:maxStoredRoundIssues]
	}
	if next.LastIssues, err = json.Marshal(issues); err != nil {
		return nil, err
	}
	if err := v.Store.SaveChainVerification(ctx, next); err != nil {
		return nil, err
	}
	if m := v.Metrics; m != nil {
		result := "valid"
		if !r.Valid {
			result = "invalid"
		}
		m.ChainVerifications.WithLabelValues(result).Inc()
		m.ChainIssues.Add(float64(r.IssueCount))
	}
	for _, is := range r.Issues {
		v.log().Error("periodic verification: chain issue", "tenant_id", is.TenantID, "partition_key", is.PartitionKey,
			"chain_pos", is.Seq, "job_id", is.JobID, "type", string(is.Type), "description", is.Description)
	}
	if n := r.IssueCount - int64(len(r.Issues)); n > 0 {
		v.log().Error("periodic verification: more chain issues not listed", "tenant_id", k.TenantID, "partition_key", k.PartitionKey, "count", n)
	}
	return out, nil
}

func (v *IncrementalVerifier) fail(k chain.Key, err error) error {
	return fmt.Errorf("audit: periodic verification of chain %s/%q: %w", k.TenantID, k.PartitionKey, err)
}

// edgeFits reports whether p's tree edge and anchor are those of a tree of
// its size: one hash per set bit, a t_hlc when there are entries.
func edgeFits(p *driver.ChainVerification) bool {
	if p.VerifiedSize < 0 || len(p.TreeEdge) != bits.OnesCount64(uint64(p.VerifiedSize)) {
		return false
	}
	return (p.VerifiedSize == 0) == (p.VerifiedTHLC == "")
}

// restoreTree rebuilds the treeBuilder of a tree of size leaves from its
// right edge (largest subtree first).
func restoreTree(size int64, edge []tlog.Hash) *treeBuilder {
	b := &treeBuilder{n: size, hashes: append([]tlog.Hash(nil), edge...)}
	for l := 62; l >= 0; l-- {
		if size>>l&1 == 1 {
			b.levels = append(b.levels, l)
		}
	}
	return b
}

// latestCheckpoint returns the chain's latest stored checkpoint when it is
// newer than the last one matched, opened (and its signature checked with
// Key); an unreadable one is an issue.
func (v *IncrementalVerifier) latestCheckpoint(ctx context.Context, cv *chainVerifier, p *driver.ChainVerification) (*checkpointCheck, error) {
	stored, err := v.Store.Checkpoints(ctx, p.Key, 1)
	if err != nil || len(stored) == 0 || stored[0].Size <= p.CheckpointSize {
		return nil, err
	}
	c := stored[0]
	b, signed, err := OpenCheckpoint(c.Note, v.Key)
	if err != nil {
		cv.issueAt(IssueCheckpointMismatch, c.Size-1, fmt.Sprintf("the stored checkpoint of size %d does not verify: %v", c.Size, err))
		return nil, nil
	}
	if !OriginOf(b.Origin, p.Key) {
		cv.issueAt(IssueCheckpointMismatch, c.Size-1, fmt.Sprintf("the stored checkpoint of size %d names %q, not this chain", c.Size, b.Origin))
		return nil, nil
	}
	if b.Size != c.Size || b.Root != c.Root {
		cv.issueAt(IssueCheckpointMismatch, c.Size-1, fmt.Sprintf("the stored checkpoint's tree_size %d and root_hash %s are not its signed note's %d and %s",
			c.Size, c.Root, b.Size, b.Root))
	}
	return &checkpointCheck{size: b.Size, root: b.Root, origin: "stored", signed: signed}, nil
}

// checkCheckpoint holds the verified and new entries to cp and reports
// whether it matched. A checkpoint inside the new entries was compared
// while they streamed; one at or before the verified position (signed
// after an earlier round passed that size) is checked with a consistency
// proof from its size to the verified size, cut from the stored tree and
// checked against the root the round continued from; one beyond the
// entries read is truncation, unless the round stopped early.
func (v *IncrementalVerifier) checkCheckpoint(ctx context.Context, cv *chainVerifier, p *driver.ChainVerification, cp *checkpointCheck,
	rootBefore tlog.Hash, end int64, behind bool) (bool, error) {
	if cp.size <= end || !behind {
		cv.res.CheckpointsChecked++
	}
	unsigned := ""
	if !cp.signed {
		unsigned = " (signature not checked: no public key given)"
	}
	switch {
	case cp.size > end && behind:
		return false, nil // the next rounds get there
	case cp.size > end:
		cv.issueAt(IssueTruncation, end, fmt.Sprintf("the stored checkpoint%s covers %d entries but the chain ends at chain_pos %d: entries from chain_pos %d on were removed",
			unsigned, cp.size, end-1, end))
		return false, nil
	case cp.size > p.VerifiedSize:
		c := cv.cps[0]
		switch {
		case c.got == nil:
			cv.issueAt(IssueCheckpointMismatch, cv.firstGap, fmt.Sprintf("the entry at chain_pos %d, covered by the stored checkpoint%s of size %d, is missing",
				cv.firstGap, unsigned, c.size))
			return false, nil
		case *c.got != c.root:
			cv.issueAt(IssueCheckpointMismatch, c.size-1, fmt.Sprintf("the entries at chain_pos 0..%d hash to root %s, but the stored checkpoint%s signed %s: "+
				"history was rewritten (`ordo verify` locates the first changed entry)", c.size-1, b64(*c.got), unsigned, b64(c.root)))
			return false, nil
		}
		return true, nil
	case cp.size == p.VerifiedSize:
		if rootBefore != cp.root {
			cv.issueAt(IssueCheckpointMismatch, cp.size-1, fmt.Sprintf("the verified entries at chain_pos 0..%d hash to root %s, but the stored checkpoint%s signed %s",
				cp.size-1, b64(rootBefore), unsigned, b64(cp.root)))
			return false, nil
		}
		return true, nil
	}
	treeSize, err := v.Store.TreeSize(ctx, p.Key)
	if err != nil || treeSize < p.VerifiedSize {
		return false, err // the checkpointer has not hashed that far yet: a later round
	}
	r := treeHashReader(ctx, v.Store, p.Key)
	proof, err := tlog.ProveTree(p.VerifiedSize, cp.size, r)
	if err == nil {
		err = tlog.CheckTree(proof, p.VerifiedSize, rootBefore, cp.size, cp.root)
	}
	if err != nil {
		cv.issueAt(IssueCheckpointMismatch, cp.size-1, fmt.Sprintf("the stored checkpoint%s of size %d is not consistent with the %d entries verified before "+
			"(their root %s; proof from the stored tree: %v): history or the stored tree was changed", unsigned, cp.size, p.VerifiedSize, b64(rootBefore), err))
		return false, nil
	}
	return true, nil
}

// checkHead compares chain_heads with the entries the round knows: the
// ones it read and the last one verified before. A head naming an entry
// verified earlier than that was checked when it was read.
func (v *IncrementalVerifier) checkHead(cv *chainVerifier, p *driver.ChainVerification, h driver.HeadRow, ok bool, end int64, behind bool) {
	switch {
	case !ok && end > 0:
		cv.issueAt(IssueHeadMismatch, end-1, "the chain has entries but no chain_heads row")
	case !ok:
	case h.EntryCount < 1 || h.EntryCount > end && !behind:
		cv.issueAt(IssueHeadMismatch, end-1, fmt.Sprintf("chain_heads has entry_count %d but the chain ends at chain_pos %d (entries removed from the end?)", h.EntryCount, end-1))
	case cv.headSeen:
		if string(h.LastLink) != string(cv.headLink[:]) || h.LastTHLC != cv.headTHLC {
			cv.issueAt(IssueHeadMismatch, cv.headPos, fmt.Sprintf("chain_heads disagrees with the entry it names (chain_pos %d): its link or t_hlc differ", cv.headPos))
		}
	case cv.headPos == p.VerifiedSize-1:
		if string(h.LastLink) != string(p.VerifiedLink[:]) || h.LastTHLC != p.VerifiedTHLC {
			cv.issueAt(IssueHeadMismatch, cv.headPos, fmt.Sprintf("chain_heads disagrees with the entry it names (chain_pos %d, verified earlier): its link or t_hlc differ", cv.headPos))
		}
	}
}

// checkNewDuplicates looks the new entries' job ids up in the whole chain
// (an index lookup each), so an id used before the verified position is
// found without reading the entries there.
func (v *IncrementalVerifier) checkNewDuplicates(ctx context.Context, cv *chainVerifier) error {
	seen := map[uuid.UUID]bool{}
	for ids := cv.newIDs; len(ids) > 0; {
		n := min(len(ids), duplicateLookupChunk)
		dups, err := v.Store.Duplicates(ctx, cv.key, ids[:n])
		ids = ids[n:]
		if err != nil {
			return err
		}
		for _, d := range dups {
			if seen[d.JobID] {
				continue
			}
			seen[d.JobID] = true
			locs, err := v.Store.FindJob(ctx, driver.JobRef{TenantID: cv.key.TenantID, JobID: d.JobID})
			if err != nil {
				return err
			}
			var mine []driver.Located
			for _, l := range locs {
				if l.Key == cv.key {
					mine = append(mine, l)
				}
			}
			for i, l := range mine {
				if i == 0 || l.Pos < cv.from {
					continue // the first occurrence is the job; later ones are the duplicates
				}
				r := &rec{pos: l.Pos, seq: l.Seq, jobID: l.JobID}
				cv.issue(IssueDuplicateJobID, r, l.THLC, fmt.Sprintf("job id occurs %d times in the chain; first at chain_pos %d", d.Count, mine[0].Pos))
			}
		}
	}
	return nil
}
