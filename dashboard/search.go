package dashboard

import (
	"context"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/driver"
)

// searchWindowText is driver.MaxSearchWindow as the jobs page states it:
// a payload search reads only the tenant's newest jobs, so that it costs
// the same however many jobs the tenant has (docs/dashboard.md).
var searchWindowText = thousands(driver.MaxSearchWindow)

// thousands writes n with comma separators: 10000 is "10,000".
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// readSearch reads the jobs page's search box into f and the list query
// api: a whole job id (any form uuid.Parse takes) is a jump to that job's
// page; any other text is a payload search, the API's payload_contains.
// Surrounding spaces are dropped (they come with pasted text); inside the
// text every character counts, % and _ included.
func readSearch(f *listFilter, api url.Values, q string) {
	q = strings.TrimSpace(q)
	if q == "" {
		return
	}
	if id, err := uuid.Parse(q); err == nil {
		f.Jump = id
		return
	}
	f.Search = q
	api.Set("payload_contains", q)
}

// queryWith is query(cursor) with one more key.
func (f listFilter) queryWith(cursor, key, value string) string {
	q, _ := url.ParseQuery(f.query(cursor)) // made by url.Values.Encode
	q.Set(key, value)
	return q.Encode()
}

// kindChoices lists the kind picker's options: the kinds of the tenant's
// recent jobs (a bounded query, driver.KindLister) and the kind filtered
// on, if it is not among them, so the picker always shows the filter.
func (d *Dashboard) kindChoices(ctx context.Context, tenant, current string) ([]string, error) {
	kinds, err := d.backend.RecentKinds(ctx, driver.KindParams{TenantID: tenant})
	if err != nil {
		return nil, err
	}
	if current != "" && !slices.Contains(kinds, current) {
		kinds = append(kinds, current)
		slices.Sort(kinds)
	}
	return kinds, nil
}
