package dashboard

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
)

// maxBulk bounds the jobs of one bulk action: one page of the list, which
// is what "select all on this page" selects. A bigger selection is
// refused, not cut, so that nothing is done that the operator did not see
// on the confirmation page.
const maxBulk = pageSize

// bulkAction is one of the actions on selected jobs.
type bulkAction struct {
	Verb, Past string
	Explain    string
	Applies    func(queue.Status) bool
	Rule       string // which jobs it applies to, for the skipped ones
}

var bulkActions = map[string]bulkAction{
	"retry": {"Retry", "retried", jobActions["retry"].Explain, queue.Status.Retryable,
		"only failed or cancelled jobs can be retried"},
	"cancel": {"Cancel", "cancelled", jobActions["cancel"].Explain,
		func(s queue.Status) bool { return !s.Finished() && s != queue.StatusPruned },
		"only jobs that have not finished can be cancelled"},
	"delete": {"Delete", "deleted", "The job's state is deleted on every side that holds it, as retention would delete it. " +
		"Its chain entry stays (the chain is append-only), so the job then reads as pruned: its kind, payload and place in " +
		"the chain remain, its final state, attempts and last error are gone. A job only in the legacy table has no chain " +
		"entry and is gone. This cannot be undone.", queue.Status.Deletable,
		"only succeeded, failed or cancelled jobs can be deleted (cancel it first)"},
}

// bulkRow is one selected job on the confirmation page.
type bulkRow struct {
	ID      uuid.UUID
	Found   bool
	Job     queue.JobInfo
	Applies bool
	Why     string // why it is skipped
}

// readBulk reads a bulk request: the action, the selected job ids (each
// once, in their order) and the list page to come back to. A selection
// that is empty, too big or holds something else than job ids is refused
// whole.
func readBulk(form url.Values) (action string, act bulkAction, ids []uuid.UUID, back string, err error) {
	action = form.Get("action")
	act, ok := bulkActions[action]
	if !ok {
		return "", act, nil, "", fmt.Errorf("there is no bulk action %q (want retry, cancel or delete)", action)
	}
	for _, s := range form["job"] {
		id, err := uuid.Parse(s)
		if err != nil {
			return "", act, nil, "", fmt.Errorf("not a job id (want a UUID): %q", truncate(s))
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
		if len(ids) > maxBulk {
			return "", act, nil, "", fmt.Errorf("at most %d jobs in one action; select fewer", maxBulk)
		}
	}
	if len(ids) == 0 {
		return "", act, nil, "", errors.New("no job is selected: tick the jobs on the list first")
	}
	// Back to a list page, as the list itself writes its query: anything
	// else in back is dropped, so it can only ever lead to the list.
	if q, perr := url.ParseQuery(form.Get("back")); perr == nil {
		if f, _, ferr := readFilter(q); ferr == nil && f.Jump == uuid.Nil {
			back = f.query(f.Cursor)
		}
	}
	return action, act, ids, back, nil
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// skipReason says why a job in status st is skipped by act.
func skipReason(act bulkAction, st queue.Status) string {
	switch st {
	case queue.StatusPruned:
		return "pruned: its state is already deleted"
	case queue.StatusChainViolation:
		return "chain_violation: withheld because its chain entry did not verify, it is evidence and is never " + act.Past
	}
	return string(st) + ": " + act.Rule
}

// confirmBulk: GET /tenants/{tenant}/jobs/bulk?action=&job=...&back= shows
// what the action would do to each selected job, and the form that does
// it (no JavaScript needed).
func (d *Dashboard) confirmBulk(w http.ResponseWriter, r *http.Request, v *view) {
	action, act, ids, back, err := readBulk(r.URL.Query())
	if err != nil {
		d.fail(w, r, v, http.StatusBadRequest, "The selection cannot be acted on: "+err.Error()+".")
		return
	}
	rows := make([]bulkRow, len(ids))
	n := 0
	skipped := map[string]int{}
	for i, id := range ids {
		rows[i].ID = id
		info, err := d.cfg.Queue.GetInTenant(r.Context(), v.Tenant, id)
		switch {
		case errors.Is(err, queue.ErrJobNotFound):
			// Another tenant's job is not found, like one that does not exist.
			rows[i].Why = "not found: tenant " + v.Tenant + " has no such job"
			skipped["not found"]++
			continue
		case err != nil:
			d.internal(w, r, v, err)
			return
		}
		rows[i].Found, rows[i].Job = true, info
		if rows[i].Applies = act.Applies(info.Status); rows[i].Applies {
			n++
		} else {
			rows[i].Why = skipReason(act, info.Status)
			skipped[string(info.Status)]++
		}
	}
	summary := fmt.Sprintf("%d will be %s", n, act.Past)
	if s := skipSummary(skipped); s != "" {
		summary += ", " + s
	}
	v.Title, v.Section = act.Verb+" "+plural(len(ids), "selected job"), "jobs"
	v.Data = map[string]any{"Action": action, "Verb": act.Verb, "Past": act.Past, "Explain": act.Explain, "Rows": rows,
		"Count": n, "CountText": plural(n, "job"), "Summary": summary + ".", "IDs": ids, "Back": back,
		"BackQuery": template.URL(back)} // made by url.Values.Encode: safe in an href as it is
	d.render(w, r, http.StatusOK, "confirm_bulk", v)
}

// bulk: POST /tenants/{tenant}/jobs/bulk does the action to each selected
// job of the tenant it applies to, now (a job may have changed since the
// confirmation page), records each, and goes back to the list with a
// one-line result.
func (d *Dashboard) bulk(w http.ResponseWriter, r *http.Request, v *view) {
	action, act, ids, back, err := readBulk(r.PostForm)
	if err != nil {
		d.fail(w, r, v, http.StatusBadRequest, "The selection cannot be acted on: "+err.Error()+".")
		return
	}
	ctx := r.Context()
	done, failed := 0, 0
	skipped := map[string]int{}
	for _, id := range ids {
		// The tenant check: Retry and DeleteJob take a bare job id, so a
		// job is only touched once it is found in this tenant (a cancel
		// names the tenant as well).
		info, err := d.cfg.Queue.GetInTenant(ctx, v.Tenant, id)
		switch {
		case errors.Is(err, queue.ErrJobNotFound):
			skipped["not found"]++
			continue
		case err != nil:
			d.log.Error("dashboard: reading a job for a bulk action failed", "action", action, "tenant", v.Tenant, "job", id, "error", err)
			failed++
			continue
		}
		if !act.Applies(info.Status) {
			skipped[string(info.Status)]++
			continue
		}
		switch action {
		case "retry":
			err = d.cfg.Queue.Retry(ctx, id)
		case "cancel":
			err = d.cfg.Queue.CancelInTenant(ctx, v.Tenant, id, "cancelled in the dashboard by "+v.Principal.Name)
		case "delete":
			err = d.cfg.Queue.DeleteJob(ctx, id)
		}
		switch {
		case err == nil:
			done++
			d.record(r, driver.OperatorAction{TenantID: v.Tenant, JobID: id, Action: action, Actor: v.Principal.Name,
				Detail: fmt.Sprintf("was %s (one of %d selected)", info.Status, len(ids)), At: v.Now})
		case errors.Is(err, queue.ErrNotRetryable), errors.Is(err, queue.ErrJobFinished),
			errors.Is(err, queue.ErrJobNotFinished), errors.Is(err, queue.ErrJobNotFound):
			// It changed since it was read (a worker finished it, retention
			// pruned it): skipped, under what it is now.
			now := "changed meanwhile"
			if info, gerr := d.cfg.Queue.GetInTenant(ctx, v.Tenant, id); gerr == nil {
				now = string(info.Status)
			}
			skipped[now]++
		default:
			d.log.Error("dashboard: a bulk action on a job failed", "action", action, "tenant", v.Tenant, "job", id, "error", err)
			failed++
		}
	}
	msg := fmt.Sprintf("%d %s", done, act.Past)
	if s := skipSummary(skipped); s != "" {
		msg += ", " + s
	}
	if failed > 0 {
		msg += fmt.Sprintf(", %d failed (the service log has the details)", failed)
	}
	q, _ := url.ParseQuery(back) // made by url.Values.Encode
	q.Set("done", "bulk")
	q.Set("msg", msg)
	q.Set("sig", flashSig(v.CSRF, msg))
	http.Redirect(w, r, "/tenants/"+url.PathEscape(v.Tenant)+"/jobs?"+q.Encode(), http.StatusSeeOther)
}

// skipSummary is "1 skipped: pending" or "3 skipped: 2 pending, 1
// running", reasons in lifecycle order; "" when none was skipped.
func skipSummary(skipped map[string]int) string {
	total := 0
	var reasons []string
	for r, n := range skipped {
		total += n
		reasons = append(reasons, r)
	}
	if total == 0 {
		return ""
	}
	rank := func(r string) int {
		if i := slices.Index(driver.AllStatuses, queue.Status(r)); i >= 0 {
			return i
		}
		return len(driver.AllStatuses) // pruned, not found, changed meanwhile: last
	}
	slices.SortFunc(reasons, func(a, b string) int {
		if ra, rb := rank(a), rank(b); ra != rb {
			return ra - rb
		}
		return strings.Compare(a, b)
	})
	if len(reasons) == 1 {
		return fmt.Sprintf("%d skipped: %s", total, reasons[0])
	}
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%d %s", skipped[r], r)
	}
	return fmt.Sprintf("%d skipped: %s", total, strings.Join(parts, ", "))
}

func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}

// The result of a bulk action comes back to the list in the redirect's
// query (?done=bulk&msg=...&sig=...), since the list is a plain GET. Its
// text is counts and states, but a link could carry any text to a
// logged-in operator, so it is signed with a key only the session has
// (its CSRF token, which never leaves the session's own pages): a
// forged or edited result is not shown.
func flashSig(csrf, msg string) string {
	m := hmac.New(sha256.New, []byte("ordo dashboard flash\x00"+csrf))
	m.Write([]byte(msg))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// bulkFlash shows a bulk action's result on the list, if its signature
// holds.
func (d *Dashboard) bulkFlash(r *http.Request, v *view) {
	q := r.URL.Query()
	if q.Get("done") != "bulk" || v.CSRF == "" {
		return
	}
	msg := q.Get("msg")
	if hmac.Equal([]byte(q.Get("sig")), []byte(flashSig(v.CSRF, msg))) {
		v.Flash = msg
	}
}
