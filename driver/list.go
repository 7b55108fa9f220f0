package driver

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/hlc"
)

// ListParams selects the jobs ListJobs returns.
type ListParams struct {
	TenantID string   // required
	Statuses []Status // only these; empty for all
	Kind     string   // only this kind; "" for all
	// Partition, when not nil, keeps only the jobs of that partition ("" is
	// the default partition; a legacy job's partition is its project_id).
	Partition *string
	// Cursor is the next value of the previous page; "" starts at the
	// beginning. A bare t_hlc starts after that timestamp.
	Cursor string
	// Limit is the page size; 0 means DefaultListLimit, at most
	// MaxListLimit.
	Limit int
	// WithPayload fills JobInfo.Payload; without it, only the hash.
	WithPayload bool
	// Newest lists newest first: the HLC side by t_hlc descending, then
	// legacy-only jobs by created_at descending. A cursor continues the
	// order it was made in.
	Newest bool
	// PayloadContains, when not "", keeps only the jobs whose payload text
	// (the JSON as stored) contains it: case-sensitive, every character
	// literal (no wildcards). It reads only the tenant's newest
	// SearchWindow jobs on each side (search.go).
	PayloadContains string
	// SearchWindow bounds a payload search; 0 means MaxSearchWindow.
	SearchWindow int
}

// Page sizes of ListJobs.
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// ErrInvalidList is wrapped by every error that refuses ListParams.
var ErrInvalidList = errors.New("queue: invalid list request")

// Validate checks p and applies the default limit.
func (p *ListParams) Validate() error {
	if err := chain.ValidateTenantID(p.TenantID); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidList, err)
	}
	for _, s := range p.Statuses {
		if !s.Valid() {
			return fmt.Errorf("%w: status %q, want one of %s", ErrInvalidList, string(s), strings.Join(statusNames(), ", "))
		}
	}
	if p.Kind != "" {
		if err := chain.ValidateKind(p.Kind); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidList, err)
		}
	}
	if p.Partition != nil {
		if err := chain.ValidatePartitionKey(*p.Partition); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidList, err)
		}
	}
	if p.Limit == 0 {
		p.Limit = DefaultListLimit
	}
	if p.Limit < 1 || p.Limit > MaxListLimit {
		return fmt.Errorf("%w: limit %d, want 1..%d", ErrInvalidList, p.Limit, MaxListLimit)
	}
	if _, err := ParseCursor(p.Cursor); err != nil {
		return err
	}
	return p.validateSearch()
}

// AllStatuses lists every status, in lifecycle order.
var AllStatuses = []Status{StatusPending, StatusScheduled, StatusRunning, StatusSucceeded, StatusFailed, StatusCancelled, StatusChainViolation}

// Valid reports whether s is a status jobs can have.
func (s Status) Valid() bool {
	for _, x := range AllStatuses {
		if s == x {
			return true
		}
	}
	return false
}

func statusNames() []string {
	out := make([]string, len(AllStatuses))
	for i, s := range AllStatuses {
		out[i] = string(s)
	}
	return out
}

// Cursor is a position in a ListJobs listing. Its text form is opaque to
// clients but stable: "h:<t_hlc>:<job id>" in the HLC section,
// "l:<created_at Unix µs>:<job id>" in the legacy section.
type Cursor struct {
	Legacy    bool      // in the legacy-only section (after every HLC job)
	THLC      string    // HLC section: the last t_hlc listed
	CreatedAt time.Time // legacy section: the last created_at listed
	JobID     uuid.UUID // the last job listed; uuid.Max after a bare t_hlc
	Start     bool      // the beginning of the listing (the empty cursor)
}

// ListOrders is a listing statement in both orders, oldest first and
// newest first (ListParams.Newest), made by OrderedList.
type ListOrders [2]string

// OrderedList makes a store's listing statement in both orders from one
// template, whose %[1]s is the cursor's comparison (> or <) and %[2]s
// ORDER BY's direction ("" or " DESC"), so that the two orders cannot
// drift apart.
func OrderedList(template string) ListOrders {
	return ListOrders{fmt.Sprintf(template, ">", ""), fmt.Sprintf(template, "<", " DESC")}
}

// For is the statement of p's order.
func (o ListOrders) For(p ListParams) string {
	if p.Newest {
		return o[1]
	}
	return o[0]
}

// StartCursor is where a listing of p starts: its Cursor, read (p is
// validated), with a bare t_hlc placed in p's order so that neither order
// lists the jobs at that very t_hlc (a bare t_hlc is "after" it, or in
// newest-first order "before" it).
func (p ListParams) StartCursor() Cursor {
	c, _ := ParseCursor(p.Cursor)
	if p.Newest && !c.Start && !c.Legacy && c.JobID == uuid.Max {
		c.JobID = uuid.Nil
	}
	return c
}

// ParseCursor reads a cursor: "", a ListJobs next value, or a bare t_hlc.
func ParseCursor(s string) (Cursor, error) {
	bad := func(why string) (Cursor, error) {
		return Cursor{}, fmt.Errorf("%w: cursor %q: %s", ErrInvalidList, truncateText(s), why)
	}
	if s == "" {
		return Cursor{Start: true}, nil
	}
	section, rest, ok := strings.Cut(s, ":")
	if !ok {
		if _, err := hlc.Parse(s); err != nil {
			return bad("not a cursor of this listing, nor a t_hlc")
		}
		return Cursor{THLC: s, JobID: uuid.Max}, nil
	}
	i := strings.LastIndexByte(rest, ':')
	if i < 0 {
		return bad("not a cursor of this listing")
	}
	id, err := uuid.Parse(rest[i+1:])
	if err != nil {
		return bad("bad job id")
	}
	switch section {
	case "h":
		if _, err := hlc.Parse(rest[:i]); err != nil {
			return bad("bad t_hlc")
		}
		return Cursor{THLC: rest[:i], JobID: id}, nil
	case "l":
		us, err := strconv.ParseInt(rest[:i], 10, 64)
		if err != nil {
			return bad("bad time")
		}
		return Cursor{Legacy: true, CreatedAt: time.UnixMicro(us).UTC(), JobID: id}, nil
	}
	return bad("not a cursor of this listing")
}

// String returns the cursor's text form.
func (c Cursor) String() string {
	switch {
	case c.Start:
		return ""
	case c.Legacy:
		return "l:" + strconv.FormatInt(c.CreatedAt.UnixMicro(), 10) + ":" + c.JobID.String()
	}
	return "h:" + c.THLC + ":" + c.JobID.String()
}

// CursorAfter is the cursor that follows job j in a listing.
func CursorAfter(j JobInfo) Cursor {
	if j.InHLC && j.Chain != nil {
		return Cursor{THLC: j.Chain.THLC, JobID: j.JobID}
	}
	return Cursor{Legacy: true, CreatedAt: j.CreatedAt, JobID: j.JobID}
}

func truncateText(s string) string {
	if len(s) > 100 {
		return s[:100] + "..."
	}
	return s
}

// CountParams selects what CountByStatus counts.
type CountParams struct {
	TenantID string   // one tenant; "" for every tenant
	Statuses []Status // only these; empty for all (counting finished jobs reads every row)
}

// StatusCount is the number of a tenant's jobs in one status.
type StatusCount struct {
	TenantID string
	Status   Status
	Count    int64
}

// APIToken is a bearer token of ordo's HTTP API as a backend stores it:
// its SHA-256, never its text.
type APIToken struct {
	ID        string // public id, e.g. "tok_3f9a1c2e7b4d", for listing and revoking
	Hash      [32]byte
	TenantID  string // the one tenant the token acts for; "" for an admin token
	Admin     bool   // acts for every tenant
	Name      string // what the token is for
	CreatedAt time.Time
	RevokedAt time.Time // zero while the token is valid
	ExpiresAt time.Time // zero: never; from then on it is refused as if revoked
}

// ErrTokenNotFound is returned for an unknown token.
var ErrTokenNotFound = errors.New("queue: API token not found")

// Session is a logged-in dashboard browser as a backend stores it.
type Session struct {
	IDHash    [32]byte // SHA-256 of the cookie's session id
	TokenHash [32]byte // SHA-256 of the API token it logged in with
	CSRF      string   // the token its forms carry
	CreatedAt time.Time
	LastSeen  time.Time
}

// SessionLimits bound the sessions CreateSession keeps. A session expired
// before IdleBefore (its last use) or CreatedBefore (its creation).
type SessionLimits struct {
	MaxTotal, MaxPerToken     int
	IdleBefore, CreatedBefore time.Time
}

// Errors of Sessions.
var (
	ErrSessionNotFound = errors.New("queue: dashboard session not found")
	ErrTooManySessions = errors.New("queue: too many dashboard sessions")
)
