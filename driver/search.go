package driver

import (
	"context"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/ordo-sched/ordo/chain"
)

// Bounds of the payload search (ListParams.PayloadContains) and of the
// kinds a tenant's recent jobs have (RecentKinds).
//
// A payload search is a substring test on each candidate's payload text,
// which no index of either backend serves (SQLite has no trigram index),
// so instead of reading every job of a tenant it reads only the tenant's
// newest jobs: at most MaxSearchWindow on the HLC side (by t_hlc, then
// job id) and at most MaxSearchWindow of the legacy table (by created_at,
// then id), each found by walking idx_job_state_tenant_hlc and
// idx_jobs_tenant_created backwards. The dashboard says so on the page.
const (
	MaxSearchWindow  = 10_000
	MaxPayloadSearch = 256 // bytes of search text
	MaxKinds         = 200
)

// ValidatePayloadSearch checks the text of a payload search: valid UTF-8
// (both backends compare characters), no NUL (PostgreSQL text cannot hold
// one), at most MaxPayloadSearch bytes. "" means no search.
func ValidatePayloadSearch(s string) error {
	switch {
	case len(s) > MaxPayloadSearch:
		return fmt.Errorf("payload search is %d bytes long; the limit is %d", len(s), MaxPayloadSearch)
	case !utf8.ValidString(s):
		return fmt.Errorf("payload search is not valid UTF-8")
	case strings.IndexByte(s, 0) >= 0:
		return fmt.Errorf("payload search contains a NUL byte")
	}
	return nil
}

// validateSearch checks p's search fields and applies the default window.
func (p *ListParams) validateSearch() error {
	if err := ValidatePayloadSearch(p.PayloadContains); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidList, err)
	}
	if p.SearchWindow == 0 {
		p.SearchWindow = MaxSearchWindow
	}
	if p.SearchWindow < 1 || p.SearchWindow > MaxSearchWindow {
		return fmt.Errorf("%w: search window %d, want 1..%d", ErrInvalidList, p.SearchWindow, MaxSearchWindow)
	}
	return nil
}

// KindParams selects what RecentKinds returns.
type KindParams struct {
	TenantID string // required
	// Window is how many of the tenant's newest jobs are read on each side
	// (as a payload search reads them); 0 means MaxSearchWindow.
	Window int
	// Limit is how many kinds at most; 0 means MaxKinds.
	Limit int
}

// Validate checks p and applies the defaults.
func (p *KindParams) Validate() error {
	if err := chain.ValidateTenantID(p.TenantID); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidList, err)
	}
	if p.Window == 0 {
		p.Window = MaxSearchWindow
	}
	if p.Limit == 0 {
		p.Limit = MaxKinds
	}
	if p.Window < 1 || p.Window > MaxSearchWindow || p.Limit < 1 || p.Limit > MaxKinds {
		return fmt.Errorf("%w: window %d (want 1..%d), limit %d (want 1..%d)", ErrInvalidList, p.Window, MaxSearchWindow, p.Limit, MaxKinds)
	}
	return nil
}

// KindLister is part of Lister: the kinds a tenant's jobs have, for the
// dashboard's kind picker.
type KindLister interface {
	// RecentKinds returns the distinct kinds of the tenant's newest
	// p.Window jobs on the HLC side (by t_hlc) and of its newest p.Window
	// rows of the legacy table (by created_at), in byte order, at most
	// p.Limit of them. It reads a bounded number of rows however many jobs
	// the tenant has, so a kind seen only in older jobs is not listed.
	RecentKinds(ctx context.Context, p KindParams) ([]string, error)
}
