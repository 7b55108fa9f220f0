package audit

import (
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"sync"

	"github.com/google/uuid"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/metrics"
)

// IssueType names what a verification issue reveals (docs/chain-spec.md
// section 8 and docs/audit.md).
type IssueType string

const (
	// IssueLinkMismatch: the stored link is not SHA-256(prev_link || job_id
	// || t_hlc || payload_hash) of the entry's own fields.
	IssueLinkMismatch IssueType = "link_mismatch"
	// IssueBrokenPredecessor: prev_link is not the previous entry's link.
	IssueBrokenPredecessor IssueType = "broken_predecessor"
	// IssueTHLCNotIncreasing: t_hlc is not after the previous entry's.
	IssueTHLCNotIncreasing IssueType = "t_hlc_not_increasing"
	// IssueBadGenesis: the first entry has a prev_link, or a later one has
	// none.
	IssueBadGenesis IssueType = "bad_genesis"
	// IssuePayloadHashMismatch: the stored payload no longer hashes to
	// payload_hash.
	IssuePayloadHashMismatch IssueType = "payload_hash_mismatch"
	// IssueJobIDMismatch: job_id is not the UUIDv5 of the entry's tenant,
	// partition, kind and idempotency key or payload hash.
	IssueJobIDMismatch IssueType = "job_id_mismatch"
	// IssueHeadMismatch: chain_heads disagrees with the last entry.
	IssueHeadMismatch IssueType = "head_mismatch"
	// IssueDuplicateJobID: a job id occurs more than once in the chain.
	IssueDuplicateJobID IssueType = "duplicate_job_id"
	// IssueTruncation: entries are missing: a gap in chain_pos, or fewer
	// entries than a signed checkpoint covers.
	IssueTruncation IssueType = "truncation"
	// IssueCheckpointMismatch: the entries a signed checkpoint covers no
	// longer hash to its root (history rewritten), or the checkpoint's
	// signature does not verify.
	IssueCheckpointMismatch IssueType = "checkpoint_mismatch"
	// IssueTreeMismatch: a hash of the stored Merkle tree (the cache the
	// checkpointer signs from and proofs are cut from) is not the hash of
	// the entries it covers.
	IssueTreeMismatch IssueType = "tree_mismatch"
	// IssueMalformed: a stored value breaks the format rules (a hash that
	// is not 32 bytes, a non-canonical t_hlc, an all-zero prev_link, a
	// kind or key that is not a valid identifier).
	IssueMalformed IssueType = "malformed"
)

// Issue is one problem found in a chain. JobID is uuid.Nil and Seq is the
// first missing position for issues that concern no stored entry (a
// truncated tail, a missing head).
type Issue struct {
	Type         IssueType `json:"type"`
	TenantID     string    `json:"tenant_id"`
	PartitionKey string    `json:"partition_key"`
	JobID        uuid.UUID `json:"job_id"`
	Seq          int64     `json:"seq"`        // chain_pos
	SeqBigint    int64     `json:"seq_bigint"` // storage order; 0 when no entry
	THLC         string    `json:"t_hlc"`
	Description  string    `json:"description"`
}

func (i Issue) String() string {
	job := "-"
	if i.JobID != uuid.Nil {
		job = i.JobID.String()
	}
	return fmt.Sprintf("%s/%q seq %d (seq_bigint %d) job %s t_hlc %s: %s: %s",
		i.TenantID, i.PartitionKey, i.Seq, i.SeqBigint, job, orDash(i.THLC), i.Type, i.Description)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// ChainResult is the verdict on one chain.
type ChainResult struct {
	TenantID       string `json:"tenant_id"`
	PartitionKey   string `json:"partition_key"`
	EntriesChecked int64  `json:"entries_checked"`
	Valid          bool   `json:"valid"`
	// Issues lists at most Verifier.MaxIssues issues; IssueCount counts
	// them all.
	Issues     []Issue `json:"issues"`
	IssueCount int64   `json:"issue_count"`
	// CheckpointsChecked counts the signed checkpoints compared with the
	// entries (the latest stored one and any the auditor supplied).
	CheckpointsChecked int `json:"checkpoints_checked"`
	// ArchivedEntries counts the entries before the database's first,
	// dropped after archiving: verified from the archive files given
	// (Verifier.Archived), or else joined through the database's record.
	ArchivedEntries int64 `json:"archived_entries,omitempty"`
}

// Result is the verdict on one or more chains.
type Result struct {
	EntriesChecked int64          `json:"entries_checked"`
	Valid          bool           `json:"valid"`
	Issues         []Issue        `json:"issues"`
	IssueCount     int64          `json:"issue_count"`
	Chains         []*ChainResult `json:"chains"`
}

func (r *Result) add(c *ChainResult) {
	r.Chains = append(r.Chains, c)
	r.EntriesChecked += c.EntriesChecked
	r.Issues = append(r.Issues, c.Issues...)
	r.IssueCount += c.IssueCount
	r.Valid = r.IssueCount == 0
}

// Verifier checks chains. Only Store is required.
type Verifier struct {
	Store driver.AuditStore
	// Metrics, when set, counts every chain verified in
	// scheduler_chain_verifications_total{result} and every issue in
	// scheduler_chain_verification_issues_total.
	Metrics *metrics.Metrics
	// Key verifies the signatures of checkpoints (the checkpointer's
	// public key). Without it, stored checkpoints are still compared with
	// the entries but their signatures are not checked, and an issue says
	// so if they disagree.
	Key *PublicKey
	// Checkpoints are signed checkpoints kept by the auditor, outside the
	// database (notes as produced by the checkpointer). Those whose origin
	// names a verified chain are checked against it. They require Key.
	Checkpoints [][]byte
	// NoStoredCheckpoints skips the checkpoints and the Merkle tree stored
	// in the database: the hash chain alone is checked.
	NoStoredCheckpoints bool
	// MaxIssues bounds the issues kept per chain (default 1000); the rest
	// are only counted, so memory stays bounded on a ruined chain.
	MaxIssues int
	// Workers hash entries in parallel (default GOMAXPROCS).
	Workers int
	// Archived holds, per chain, its beginning as archive files hold it
	// (package archive verifies them): the database's entries are joined
	// to it, so a chain whose oldest entries were dropped verifies from
	// its genesis. Without it, such a chain is joined to the database's
	// record of the dropped range (scheduler.chain_archives) instead.
	Archived map[chain.Key]*ArchivedPrefix
}

// Verify checks the chains of tenantID: the one of partition if given,
// else every chain of the tenant. It is a shorthand for a Verifier with
// only a Store.
func Verify(ctx context.Context, s driver.AuditStore, tenantID string, partition ...string) (*Result, error) {
	return (&Verifier{Store: s}).Verify(ctx, tenantID, partition...)
}

// Verify checks the chains of tenantID: the one of partition if given,
// else every chain of the tenant (an unknown tenant has none and is
// valid). An error means the check could not be done, not that the chain
// is invalid.
func (v *Verifier) Verify(ctx context.Context, tenantID string, partition ...string) (*Result, error) {
	if err := chain.ValidateTenantID(tenantID); err != nil {
		return nil, err
	}
	if len(partition) > 1 {
		return nil, errors.New("audit: Verify takes at most one partition")
	}
	var keys []chain.Key
	if len(partition) == 1 {
		if err := chain.ValidatePartitionKey(partition[0]); err != nil {
			return nil, err
		}
		keys = []chain.Key{{TenantID: tenantID, PartitionKey: partition[0]}}
	} else {
		var err error
		if keys, err = v.Store.Chains(ctx, tenantID); err != nil {
			return nil, err
		}
	}
	return v.verifyKeys(ctx, keys)
}

// VerifyAll checks every chain of every tenant.
func (v *Verifier) VerifyAll(ctx context.Context) (*Result, error) {
	keys, err := v.Store.Chains(ctx, "")
	if err != nil {
		return nil, err
	}
	return v.verifyKeys(ctx, keys)
}

func (v *Verifier) verifyKeys(ctx context.Context, keys []chain.Key) (*Result, error) {
	if err := v.checkAuditorOrigins(keys); err != nil {
		return nil, err
	}
	res := &Result{Valid: true, Issues: []Issue{}, Chains: []*ChainResult{}}
	for _, k := range keys {
		c, err := v.verifyChain(ctx, k)
		if err != nil {
			return nil, err
		}
		res.add(c)
	}
	return res, nil
}

// VerifyChain checks one chain, streaming its entries in chain_pos order in
// constant memory, against docs/chain-spec.md section 8, its chain_heads
// row, and signed checkpoints.
func (v *Verifier) VerifyChain(ctx context.Context, k chain.Key) (*ChainResult, error) {
	if err := v.checkAuditorOrigins([]chain.Key{k}); err != nil {
		return nil, err
	}
	return v.verifyChain(ctx, k)
}

// checkAuditorOrigins refuses a verification asked to hold chains to an
// auditor's checkpoint of a chain it does not verify: the checkpoint
// would go unused while the answer looked as if it had been checked
// (issue 14: another chain's checkpoint passed with exit 0).
func (v *Verifier) checkAuditorOrigins(keys []chain.Key) error {
	if len(v.Checkpoints) == 0 {
		return nil
	}
	if v.Key == nil {
		return errors.New("audit: checking the auditor's checkpoints needs the public key")
	}
	origins := make(map[string]bool, len(keys))
	for _, k := range keys {
		origins[Origin(k)], origins[LegacyOrigin(k)] = true, true
	}
	for i, msg := range v.Checkpoints {
		b, _, err := OpenCheckpoint(msg, v.Key)
		if err != nil {
			return fmt.Errorf("audit: auditor checkpoint %d: %w", i+1, err)
		}
		if !origins[b.Origin] {
			return fmt.Errorf("audit: auditor checkpoint %d is of %q, which is not among the %d chains verified: "+
				"verify that chain (or every chain) to check it", i+1, b.Origin, len(keys))
		}
	}
	return nil
}

func (v *Verifier) verifyChain(ctx context.Context, k chain.Key) (*ChainResult, error) {
	cv := &chainVerifier{v: v, key: k, firstGap: -1, res: &ChainResult{TenantID: k.TenantID, PartitionKey: k.PartitionKey, Issues: []Issue{}}}
	if err := cv.run(ctx); err != nil {
		return nil, fmt.Errorf("audit: verifying chain %s/%q: %w", k.TenantID, k.PartitionKey, err)
	}
	r := cv.res
	r.Valid = r.IssueCount == 0
	if m := v.Metrics; m != nil {
		if r.Valid {
			m.ChainVerifications.WithLabelValues("valid").Inc()
		} else {
			m.ChainVerifications.WithLabelValues("invalid").Inc()
		}
		m.ChainIssues.Add(float64(r.IssueCount))
	}
	return r, nil
}

// rec is one entry copied out of the store's buffers, plus what the
// workers found.
type rec struct {
	pos, seq                    int64
	thlc, kind, key, payload    span // in the batch arena
	hasKey                      bool
	jobID                       uuid.UUID
	payloadHash, prevLink, link chain.Hash
	prevNull                    bool
	badLen                      string // a hash of the wrong length, named
	thlcText                    string // only for records made outside a batch
}

// problem is what a worker found wrong with the entry recs[idx].
type problem struct {
	idx  int
	typ  IssueType
	desc string
}

type span struct{ off, n int32 }

type batch struct {
	recs  []rec
	arena []byte
	probs []problem // in recs order; written by the batch's one worker
	done  chan struct{}
}

func (b *batch) bytes(s span) []byte { return b.arena[s.off : s.off+s.n] }

func (b *batch) put(p []byte) span {
	s := span{int32(len(b.arena)), int32(len(p))}
	b.arena = append(b.arena, p...)
	return s
}

const batchSize = 1024

type chainVerifier struct {
	v   *Verifier
	key chain.Key
	res *ChainResult

	// sequential state
	n        int64 // entries seen
	lastPos  int64
	lastSeq  int64
	lastJob  uuid.UUID
	lastLink chain.Hash
	lastTHLC []byte

	// the entry chain_heads names (chain_pos entry_count - 1), as found
	headPos  int64
	headSeen bool
	headLink chain.Hash
	headTHLC string

	bloom      []uint64
	candidates []uuid.UUID
	overflow   bool

	tree *treeBuilder
	cps  []checkpointCheck // to compare, ascending size
	// resume continues a chain verified up to chain_pos from-1 (the
	// periodic round, incremental.go): the state above starts as that
	// entry's, the stream reads [from, to), and new job ids are collected
	// for an exact duplicate lookup instead of the filter.
	resume   bool
	from, to int64
	newIDs   []uuid.UUID
	cpNext   int
	partOK   bool // tenant and partition are valid identifiers
	// archived entries (chain_pos 0..archived-1) were dropped from the
	// database; prefix holds them when archive files were given.
	archived      int64
	prefix        *ArchivedPrefix
	headUnchecked bool        // chain_heads names a dropped entry the record cannot show
	archiveEdge   []tlog.Hash // the record's tree edge at archived, when no prefix
	firstGap      int64       // first missing chain_pos, -1 while none
	maxIssue      int
}

// checkpointCheck is one signed checkpoint to hold the chain against.
type checkpointCheck struct {
	size   int64
	root   tlog.Hash
	origin string // where it came from, for messages
	signed bool   // signature verified
	got    *tlog.Hash
}

func (cv *chainVerifier) issue(typ IssueType, r *rec, thlc string, desc string) {
	cv.res.IssueCount++
	if len(cv.res.Issues) >= cv.maxIssue {
		return
	}
	is := Issue{Type: typ, TenantID: cv.key.TenantID, PartitionKey: cv.key.PartitionKey, Seq: -1, Description: desc}
	if r != nil {
		is.JobID, is.Seq, is.SeqBigint, is.THLC = r.jobID, r.pos, r.seq, thlc
	}
	cv.res.Issues = append(cv.res.Issues, is)
}

func (cv *chainVerifier) run(ctx context.Context) error {
	cv.maxIssue = cv.v.MaxIssues
	if cv.maxIssue <= 0 {
		cv.maxIssue = 1000
	}
	k := cv.key
	cv.partOK = chain.ValidateTenantID(k.TenantID) == nil && chain.ValidatePartitionKey(k.PartitionKey) == nil
	head, hasHead, err := cv.v.Store.Head(ctx, k)
	if err != nil {
		return err
	}
	cv.headPos = -1
	if hasHead {
		cv.headPos = head.EntryCount - 1
	}
	// Size the duplicate filter by the head's count (only a hint).
	bits := int64(1 << 12)
	for hasHead && bits < head.EntryCount*16 && bits < 1<<27 {
		bits <<= 1
	}
	cv.bloom = make([]uint64, bits/64)
	if err := cv.loadCheckpoints(ctx); err != nil {
		return err
	}
	if len(cv.cps) > 0 {
		cv.tree = &treeBuilder{}
	}
	st, err := cv.loadArchiveStart(ctx)
	if err != nil {
		return err
	}
	if st.dropped > 0 {
		cv.seedFromArchive(st)
	} else {
		cv.prefix = st.prefix // archived, not dropped: the overlap is compared
	}
	if err := cv.stream(ctx); err != nil {
		return err
	}
	cv.res.EntriesChecked = cv.n
	cv.checkHead(head, hasHead)
	if err := cv.checkDuplicates(ctx); err != nil {
		return err
	}
	if !cv.v.NoStoredCheckpoints {
		if err := cv.checkStoredTree(ctx); err != nil {
			return err
		}
	}
	return cv.checkCheckpoints(ctx)
}

// stream reads the chain (one goroutine), hashes entries in parallel
// (workers) and runs the sequential checks in order (this goroutine),
// with a fixed number of batches in flight.
func (cv *chainVerifier) stream(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := cv.v.Workers
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	nbuf := 2*workers + 2
	free := make(chan *batch, nbuf)
	for range nbuf {
		free <- &batch{recs: make([]rec, 0, batchSize), arena: make([]byte, 0, batchSize*128)}
	}
	work := make(chan *batch, nbuf)
	ordered := make(chan *batch, nbuf)

	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			w := newEntryChecker(cv.key, cv.partOK)
			for b := range work {
				b.probs = b.probs[:0]
				for i := range b.recs {
					w.check(b, i)
				}
				close(b.done)
			}
		})
	}

	var scanErr error
	go func() {
		defer close(ordered)
		defer close(work)
		var cur *batch
		send := func() bool {
			cur.done = make(chan struct{})
			select {
			case work <- cur:
			case <-ctx.Done():
				return false
			}
			select {
			case ordered <- cur:
			case <-ctx.Done():
				return false
			}
			cur = nil
			return true
		}
		from, to := cv.from, int64(-1)
		if cv.resume {
			to = cv.to
		}
		scanErr = cv.v.Store.Scan(ctx, driver.ScanParams{Key: cv.key, From: from, To: to, WithPayload: true}, func(e *driver.LogEntry) error {
			if cur == nil {
				select {
				case cur = <-free:
				case <-ctx.Done():
					return ctx.Err()
				}
				cur.recs, cur.arena = cur.recs[:0], cur.arena[:0]
			}
			cur.recs = cur.recs[:len(cur.recs)+1]
			copyEntry(cur, &cur.recs[len(cur.recs)-1], e)
			if len(cur.recs) == batchSize && !send() {
				return ctx.Err()
			}
			return nil
		})
		if scanErr == nil && cur != nil && len(cur.recs) > 0 {
			send()
		}
	}()

	for b := range ordered {
		<-b.done // every batch in ordered went to a worker first
		if ctx.Err() == nil {
			probs := b.probs
			for i := range b.recs {
				k := 0
				for k < len(probs) && probs[k].idx == i {
					k++
				}
				cv.sequential(b, &b.recs[i], probs[:k])
				probs = probs[k:]
			}
		}
		free <- b
	}
	wg.Wait()
	if scanErr != nil {
		return scanErr
	}
	return ctx.Err()
}

// copyEntry fills r (every field: it is reused) from e. It runs on the
// reading goroutine, the pipeline's bottleneck, so it does little.
func copyEntry(b *batch, r *rec, e *driver.LogEntry) {
	r.pos, r.seq, r.jobID, r.hasKey, r.prevNull, r.badLen = e.Pos, e.Seq, e.JobID, e.HasKey, e.PrevLink == nil, ""
	r.thlc = b.put(e.THLC)
	r.kind = b.put(e.Kind)
	r.key = b.put(e.IdempotencyKey)
	r.payload = b.put(e.Payload)
	r.payloadHash, r.prevLink, r.link = chain.Hash{}, chain.Hash{}, chain.Hash{}
	copy(r.payloadHash[:], e.PayloadHash)
	copy(r.prevLink[:], e.PrevLink)
	copy(r.link[:], e.Link)
	if len(e.PayloadHash) != 32 || len(e.Link) != 32 || (e.PrevLink != nil && len(e.PrevLink) != 32) {
		r.badLen = fmt.Sprintf("payload_hash, prev_link and link must be 32 bytes; they are %d, %d and %d", len(e.PayloadHash), len(e.PrevLink), len(e.Link))
	}
}

// sequential runs the checks that need the previous entry, the running
// tree and the duplicate filter, in chain order.
func (cv *chainVerifier) sequential(b *batch, r *rec, probs []problem) {
	thlc := b.bytes(r.thlc)
	var thlcStr string
	str := func() string {
		if thlcStr == "" {
			thlcStr = string(thlc)
		}
		return thlcStr
	}
	first := cv.n == 0 && cv.from == 0
	expect := cv.lastPos + 1
	if first {
		expect = 0
	}
	if r.pos > expect {
		if cv.firstGap < 0 {
			cv.firstGap = expect
		}
		what := fmt.Sprintf("chain_pos %d", expect)
		if r.pos > expect+1 {
			what = fmt.Sprintf("chain_pos %d to %d", expect, r.pos-1)
		}
		cv.issue(IssueTruncation, r, str(), fmt.Sprintf("gap in chain_pos: %s missing before this entry (%d entries deleted)", what, r.pos-expect))
	}
	for _, p := range probs {
		cv.issue(p.typ, r, str(), p.desc)
	}
	s := chain.Stored{THLC: thlc, PrevLink: r.prevLink, PrevNull: r.prevNull}
	f := chain.CheckSuccession(&s, first, chain.Previous{Exists: !first, Link: cv.lastLink, THLC: cv.lastTHLC})
	switch {
	case f.Has(chain.FaultGenesis) && first:
		desc := "the first entry of the chain has a prev_link; a genesis entry has none (the entries before it were removed)"
		cv.issue(IssueBadGenesis, r, str(), desc)
	case f.Has(chain.FaultGenesis):
		cv.issue(IssueBadGenesis, r, str(), "prev_link is NULL inside the chain: a second genesis entry (a new chain started inside this one)")
	case f.Has(chain.FaultPredecessor):
		cv.issue(IssueBrokenPredecessor, r, str(), fmt.Sprintf("prev_link %s is not the link %s of %s",
			short(r.prevLink), short(cv.lastLink), cv.previous()))
	}
	if f.Has(chain.FaultTHLCOrder) {
		cv.issue(IssueTHLCNotIncreasing, r, str(), fmt.Sprintf("t_hlc %s is not after the t_hlc %s of %s",
			str(), cv.lastTHLC, cv.previous()))
	}
	if cv.resume {
		cv.newIDs = append(cv.newIDs, r.jobID)
	} else {
		cv.bloomAdd(r.jobID)
	}
	if p := cv.prefix; p != nil {
		if r.pos < p.Len() && p.Links[r.pos] != r.link {
			cv.issue(IssueArchiveMismatch, r, str(), fmt.Sprintf("the archives given (%s) hold another entry at this chain_pos (link %s, not %s)",
				p.Source, short(p.Links[r.pos]), short(r.link)))
		} else if at := p.posOf(r.jobID); at >= 0 && at != r.pos {
			cv.issue(IssueDuplicateJobID, r, str(), fmt.Sprintf("job id occurs in the archives given (%s) at chain_pos %d too", p.Source, at))
		}
	}
	if cv.tree != nil && cv.firstGap < 0 {
		cv.tree.add(LeafHash(r.link))
		cv.matchCheckpoints()
	}
	if r.pos == cv.headPos && !cv.headSeen {
		cv.headSeen, cv.headLink, cv.headTHLC = true, r.link, str()
	}
	cv.n++
	cv.lastPos, cv.lastSeq, cv.lastJob, cv.lastLink = r.pos, r.seq, r.jobID, r.link
	cv.lastTHLC = append(cv.lastTHLC[:0], thlc...)
}

// previous names the entry before the current one in messages: the
// previous entry read, or the last one an earlier round verified.
func (cv *chainVerifier) previous() string {
	if cv.n == 0 && cv.archived > 0 && !cv.resume {
		return fmt.Sprintf("the last archived entry (chain_pos %d)", cv.lastPos)
	}
	if cv.n == 0 && cv.resume {
		return fmt.Sprintf("the last entry verified by an earlier round (chain_pos %d)", cv.lastPos)
	}
	return fmt.Sprintf("the previous entry (chain_pos %d, job %s)", cv.lastPos, cv.lastJob)
}

// lastRec is the last entry seen, for issues about it.
func (cv *chainVerifier) lastRec() *rec {
	return &rec{pos: cv.lastPos, seq: cv.lastSeq, jobID: cv.lastJob, link: cv.lastLink}
}

func short(h chain.Hash) string { return hex.EncodeToString(h[:6]) + "…" }

// bloomAdd records id and keeps it as a duplicate candidate when the
// filter may have seen it. The filter's size is fixed, so memory is
// bounded; candidates are confirmed exactly by the store, and when there
// are too many, the store checks the whole chain instead.
func (cv *chainVerifier) bloomAdd(id uuid.UUID) {
	if cv.overflow {
		return
	}
	m := uint64(len(cv.bloom) * 64)
	h1 := uint64(id[0]) | uint64(id[1])<<8 | uint64(id[2])<<16 | uint64(id[3])<<24 | uint64(id[4])<<32 | uint64(id[5])<<40 | uint64(id[7])<<48 | uint64(id[9])<<56
	h2 := (uint64(id[10]) | uint64(id[11])<<8 | uint64(id[12])<<16 | uint64(id[13])<<24 | uint64(id[14])<<32 | uint64(id[15])<<40) | 1
	seen := true
	for i := range uint64(3) {
		bit := (h1 + i*h2) % m
		w, mask := bit/64, uint64(1)<<(bit%64)
		if cv.bloom[w]&mask == 0 {
			seen = false
			cv.bloom[w] |= mask
		}
	}
	if seen {
		if len(cv.candidates) >= maxDupCandidates {
			cv.overflow, cv.candidates = true, nil
			return
		}
		cv.candidates = append(cv.candidates, id)
	}
}

const maxDupCandidates = 4096

func (cv *chainVerifier) checkDuplicates(ctx context.Context) error {
	if cv.n == 0 || (!cv.overflow && len(cv.candidates) == 0) {
		return nil
	}
	var cands []uuid.UUID
	if !cv.overflow {
		cands = cv.candidates
	}
	dups, err := cv.v.Store.Duplicates(ctx, cv.key, cands)
	if err != nil {
		return err
	}
	for _, d := range dups {
		locs, err := cv.v.Store.FindJob(ctx, driver.JobRef{TenantID: cv.key.TenantID, JobID: d.JobID})
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
			if i == 0 {
				continue // the first occurrence is the job; later ones are the duplicates
			}
			r := &rec{pos: l.Pos, seq: l.Seq, jobID: l.JobID}
			cv.issue(IssueDuplicateJobID, r, l.THLC, fmt.Sprintf("job id occurs %d times in the chain; first at chain_pos %d", d.Count, mine[0].Pos))
		}
	}
	return nil
}

func (cv *chainVerifier) checkHead(h driver.HeadRow, ok bool) {
	switch {
	case cv.n == 0 && !ok:
		return
	case cv.n == 0 && cv.archived == 0:
		cv.issue(IssueHeadMismatch, nil, "", fmt.Sprintf("chain_heads has a head (%d entries, t_hlc %s) but the chain has no entries: every entry was removed", h.EntryCount, h.LastTHLC))
		return
	case !ok:
		cv.issue(IssueHeadMismatch, cv.lastRec(), string(cv.lastTHLC), "the chain has entries but no chain_heads row")
		return
	}
	// The row is a cache that may trail the log (driver.AuditStore.Head):
	// it must name an entry of the chain, and no position past its end.
	if h.EntryCount > cv.lastPos+1 || h.EntryCount < 1 {
		desc := fmt.Sprintf("chain_heads has entry_count %d but the chain ends at chain_pos %d", h.EntryCount, cv.lastPos)
		if h.EntryCount > cv.lastPos+1 {
			desc += " (entries removed from the end?)"
		}
		cv.issue(IssueHeadMismatch, cv.lastRec(), string(cv.lastTHLC), desc)
		return
	}
	if !cv.headSeen && cv.headUnchecked {
		return
	}
	if !cv.headSeen {
		cv.issue(IssueHeadMismatch, cv.lastRec(), string(cv.lastTHLC),
			fmt.Sprintf("chain_heads names chain_pos %d, which the chain does not have (entries removed?)", cv.headPos))
		return
	}
	var problems []string
	if !bytes.Equal(h.LastLink, cv.headLink[:]) {
		problems = append(problems, fmt.Sprintf("its link %x… is not that entry's link %s", h.LastLink[:min(6, len(h.LastLink))], short(cv.headLink)))
	}
	if h.LastTHLC != cv.headTHLC {
		problems = append(problems, fmt.Sprintf("its t_hlc %s is not that entry's %s", h.LastTHLC, cv.headTHLC))
	}
	if len(problems) > 0 {
		desc := fmt.Sprintf("chain_heads disagrees with the entry it names (chain_pos %d): ", cv.headPos)
		for i, p := range problems {
			if i > 0 {
				desc += "; "
			}
			desc += p
		}
		cv.issue(IssueHeadMismatch, cv.lastRec(), string(cv.lastTHLC), desc)
	}
}

// entryChecker runs the per-entry checks that need nothing but the entry:
// they are independent, so workers run them in parallel.
type entryChecker struct {
	b      *batch
	i      int
	key    chain.Key
	partOK bool
	canon  chain.Canonicalizer
	sha1   hash.Hash
	name   []byte
	sum    []byte
}

func newEntryChecker(k chain.Key, partOK bool) *entryChecker {
	return &entryChecker{key: k, partOK: partOK, sha1: sha1.New()}
}

func (w *entryChecker) check(b *batch, i int) {
	r := &b.recs[i]
	w.b, w.i = b, i
	thlc := b.bytes(r.thlc)
	if r.badLen != "" {
		w.add(IssueMalformed, r.badLen)
	}
	if !r.prevNull && r.prevLink == (chain.Hash{}) {
		w.add(IssueMalformed, "prev_link is 32 zero bytes; a genesis entry's prev_link must be NULL")
	}
	if reason := canonicalTHLC(thlc); reason != "" {
		w.add(IssueMalformed, "t_hlc "+reason)
	}
	// 5 and 6: payload and link, by the chain's own check.
	s := chain.Stored{JobID: r.jobID, THLC: thlc, PayloadHash: r.payloadHash, PrevLink: r.prevLink, PrevNull: r.prevNull, Link: r.link}
	f, jsonErr := w.canon.CheckEntry(&s, b.bytes(r.payload))
	switch {
	case f.Has(chain.FaultPayloadHash) && jsonErr != nil:
		w.add(IssuePayloadHashMismatch, fmt.Sprintf("the stored payload is not acceptable JSON (%v), so it cannot hash to payload_hash", jsonErr))
	case f.Has(chain.FaultPayloadHash):
		w.add(IssuePayloadHashMismatch, "the stored payload no longer hashes to payload_hash (payload changed after it was written)")
	}
	switch {
	case f.Has(chain.FaultLink) && (len(thlc) == 0 || len(thlc) > 85):
		w.add(IssueLinkMismatch, fmt.Sprintf("t_hlc of %d bytes cannot be linked", len(thlc)))
	case f.Has(chain.FaultLink):
		w.add(IssueLinkMismatch, "the stored link is not SHA-256(prev_link || job_id || t_hlc || payload_hash) of this entry: one of them, or the link, was changed")
	}
	// 7. job id
	if w.partOK {
		w.checkJobID(b, r)
	}
}

func (w *entryChecker) checkJobID(b *batch, r *rec) {
	kind, key := b.bytes(r.kind), b.bytes(r.key)
	if err := chain.ValidateKind(string(kind)); err != nil {
		w.add(IssueMalformed, err.Error())
		return
	}
	if r.hasKey {
		if err := chain.ValidateIdempotencyKey(string(key)); err != nil || len(key) == 0 {
			w.add(IssueMalformed, "idempotency_key is stored but is not a valid key")
			return
		}
	}
	// UUIDv5(namespace, tenant 0 partition 0 kind 0 key-or-hex(payload_hash)),
	// docs/chain-spec.md section 5.
	w.name = append(w.name[:0], chain.Namespace[:]...)
	w.name = append(w.name, w.key.TenantID...)
	w.name = append(w.name, 0)
	w.name = append(w.name, w.key.PartitionKey...)
	w.name = append(w.name, 0)
	w.name = append(w.name, kind...)
	w.name = append(w.name, 0)
	if r.hasKey {
		w.name = append(w.name, key...)
	} else {
		w.name = hex.AppendEncode(w.name, r.payloadHash[:])
	}
	w.sha1.Reset()
	w.sha1.Write(w.name)
	w.sum = w.sha1.Sum(w.sum[:0])
	var id uuid.UUID
	copy(id[:], w.sum)
	id[6] = id[6]&0x0f | 0x50
	id[8] = id[8]&0x3f | 0x80
	if id != r.jobID {
		w.add(IssueJobIDMismatch, fmt.Sprintf("job_id is not the UUIDv5 of the entry's tenant, partition, kind and key (recomputed %s)", id))
	}
}

// canonicalTHLC returns "" for a canonical t_hlc text
// (DDDDDDDDDDDDD-CCCCCC-NODE, docs/chain-spec.md section 3), else why not.
func canonicalTHLC(t []byte) string {
	const prefix = 21
	if len(t) <= prefix || len(t) > prefix+64 {
		return fmt.Sprintf("is %d bytes; a canonical t_hlc has 22 to 85", len(t))
	}
	for i, c := range t[:prefix] {
		switch {
		case i == 13 || i == 20:
			if c != '-' {
				return "is not of the form DDDDDDDDDDDDD-CCCCCC-NODE"
			}
		case c < '0' || c > '9':
			return "is not of the form DDDDDDDDDDDDD-CCCCCC-NODE"
		}
	}
	for i, c := range t[prefix:] {
		alnum := c >= '0' && c <= '9' || c|0x20 >= 'a' && c|0x20 <= 'z'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return "has an invalid node id"
		}
	}
	return ""
}

func (w *entryChecker) add(typ IssueType, desc string) {
	w.b.probs = append(w.b.probs, problem{w.i, typ, desc})
}
