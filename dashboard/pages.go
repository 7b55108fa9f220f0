package dashboard

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/internal/errstatus"
	"github.com/ordo-sched/ordo/internal/listquery"
	"github.com/ordo-sched/ordo/queue"
)

// rateWindow is the window of the overview's enqueue and completion rates.
const rateWindow = 5 * time.Minute

// pageSize is the number of jobs on one page of the jobs list.
const pageSize = 50

var funcs = template.FuncMap{
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12] + "…"
		}
		return s
	},
	"ago": func(now, t time.Time) string { return ago(now.Sub(t)) },
	// when writes a time in UTC, as every time on the dashboard is; app.js
	// adds the reader's local time as its title (shown on hover).
	"when": func(t time.Time) template.HTML {
		if t.IsZero() {
			return "—"
		}
		t = t.UTC()
		return template.HTML(`<time datetime="` + t.Format(time.RFC3339Nano) + `" data-utc>` + t.Format("2006-01-02 15:04:05Z") + `</time>`)
	},
	"rate":       rate,
	"spanNote":   spanNote,
	"fmtWait":    func(ms int64) string { return fmtWait(float64(ms)) },
	"rfc3339":    func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"statuses":   func() []queue.Status { return driver.AllStatuses },
	"pathEscape": url.PathEscape,
	"partition": func(p string) string {
		if p == "" {
			return "(default)"
		}
		return p
	},
	"add":              func(a, b int64) int64 { return a + b },
	"maxAttemptErrors": func() int { return driver.MaxAttemptErrors },
}

func ago(d time.Duration) string {
	neg := d < 0
	if neg {
		d = -d
	}
	var s string
	switch {
	case d < time.Second:
		s = strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	case d < time.Minute:
		s = strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	case d < time.Hour:
		s = strconv.Itoa(int(d.Minutes())) + " min"
	case d < 48*time.Hour:
		s = strconv.FormatFloat(d.Hours(), 'f', 1, 64) + " h"
	default:
		s = strconv.Itoa(int(d.Hours()/24)) + " days"
	}
	if neg {
		return "in " + s
	}
	return s + " ago"
}

// parsePages parses every page with the layout.
func parsePages() (map[string]*template.Template, error) {
	layout, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fsGlob("templates/*.html")
	if err != nil {
		return nil, err
	}
	pages := map[string]*template.Template{}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFiles, name)
		if err != nil {
			return nil, fmt.Errorf("dashboard: template %s: %w", name, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// render writes a page. It renders into a buffer first, so a template
// error becomes a clean 500 instead of half a page.
func (d *Dashboard) render(w http.ResponseWriter, r *http.Request, status int, page string, v *view) {
	t, ok := d.pages[page]
	if !ok {
		d.log.Error("dashboard: no such page template", "page", page)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	if d.cfg.Demo && v.Intro == "" {
		v.Intro = demoIntros[page]
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout.html", v); err != nil {
		d.log.Error("dashboard: rendering a page failed", "page", page, "path", r.URL.Path, "error", err)
		http.Error(w, "rendering the page failed; the service log has the details", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// demoIntros are the demo's one line per page, keyed by template name.
var demoIntros = map[string]string{
	"overview": "Every tenant's jobs by state. The demo enqueues a trickle of noop jobs for two tenants, from two nodes, in HLC order; this node's workers run them.",
	"jobs":     "A tenant's jobs in HLC order: t_hlc is the hybrid logical clock timestamp (wall time, counter, node) that fixes each job's place, and link chains each job to the one before it in its partition.",
	"job":      "One job with its chain entry. Its inclusion proof ties the entry to a signed checkpoint of the chain's Merkle tree; “Check the proof in this browser” recomputes it here, without trusting the server.",
	"chain":    "The tenant's chains, checked end to end: each link recomputed from its predecessor, and the signed checkpoints of each chain's Merkle tree. Verify now runs the same check as `ordo verify`.",
	"queues":   "Pausing a queue stops its jobs from being handed out on every node; enqueues go on.",
	"periodic": "The periodic jobs this node's worker client runs: when each last ran and when it runs next.",
	"nodes":    "Each node's hybrid logical clock and how far it is from this node's wall clock. The demo's second node enqueues half the jobs, so t_hlc names two nodes.",
}

// fail shows an error page with status.
func (d *Dashboard) fail(w http.ResponseWriter, r *http.Request, v *view, status int, msg string) {
	v.Title = http.StatusText(status)
	v.Data = map[string]any{"Status": status, "Message": msg}
	d.render(w, r, status, "error", v)
}

// failErr shows err's page with the status errstatus gives it, the one
// the HTTP API gives it too: a caller's mistake with msg; the service's
// own failure (5xx) is logged and shown without details.
func (d *Dashboard) failErr(w http.ResponseWriter, r *http.Request, v *view, err error, msg string) {
	st := errstatus.Of(err)
	if st.Internal() {
		d.log.Error("dashboard: request failed", "method", r.Method, "path", r.URL.Path, "status", st.HTTP, "error", err)
		msg = "The request failed; the service log has the details."
	}
	d.fail(w, r, v, st.HTTP, msg)
}

// internal shows an error no handler expected: 500, or 503 for a closed
// database or a cancelled request (errstatus), without details.
func (d *Dashboard) internal(w http.ResponseWriter, r *http.Request, v *view, err error) {
	d.failErr(w, r, v, err, "The request failed.")
}

// flashText turns the ?done= code of a redirect after an action into a
// sentence: only known codes, so a link cannot put words on the page.
func flashText(code string) string {
	return map[string]string{
		"retried":   "The job is back in the queue.",
		"cancelled": "The job is cancelled.",
		"paused":    "The queue is paused: workers will not be handed its jobs until it is resumed.",
		"resumed":   "The queue is resumed.",
	}[code]
}

// tenantOverview is one tenant's row of the overview.
type tenantOverview struct {
	Tenant       string
	Counts       map[queue.Status]int64
	Total        int64
	Activity     driver.TenantActivity
	RateSpan     time.Duration // what the rates cover (rateSpan)
	Paused       []driver.PausedQueue
	Verification *driver.VerificationRecord
}

// overview: GET /
func (d *Dashboard) overview(w http.ResponseWriter, r *http.Request, v *view) {
	ctx := r.Context()
	scope := "" // every tenant, for an admin
	if !v.Principal.Admin {
		scope = v.Principal.Tenant
	}
	q := r.URL.Query()
	window, ok := chartWindowNamed(q.Get("window"))
	if !ok {
		d.fail(w, r, v, http.StatusBadRequest, "The chart window is not valid: want hour or day.")
		return
	}
	chartTenant := scope
	if t := q.Get("tenant"); t != "" && v.Principal.Admin {
		if chain.ValidateTenantID(t) != nil {
			d.fail(w, r, v, http.StatusBadRequest, "The tenant is not valid: "+t)
			return
		}
		chartTenant = t
	}
	var choices []string
	if v.Principal.Admin {
		choices = v.Tenants
	}
	act, err := d.activity(ctx, v.Now, window, chartTenant, choices)
	if err != nil {
		d.internal(w, r, v, err)
		return
	}
	acts, err := d.backend.TenantActivity(ctx, scope, v.Now.Add(-rateWindow))
	if err != nil {
		d.internal(w, r, v, err)
		return
	}
	counts, err := d.backend.CountByStatus(ctx, driver.CountParams{TenantID: scope})
	if err != nil {
		d.internal(w, r, v, err)
		return
	}
	paused, err := d.backend.PausedQueues(ctx, scope)
	if err != nil {
		d.internal(w, r, v, err)
		return
	}
	verifs, err := d.backend.Verifications(ctx, scope)
	if err != nil {
		d.internal(w, r, v, err)
		return
	}
	rows := map[string]*tenantOverview{}
	row := func(t string) *tenantOverview {
		if rows[t] == nil {
			rows[t] = &tenantOverview{Tenant: t, Counts: map[queue.Status]int64{}, Activity: driver.TenantActivity{TenantID: t}}
		}
		return rows[t]
	}
	if scope != "" {
		row(scope) // a tenant token sees its tenant even before its first job
	}
	for _, a := range acts {
		row(a.TenantID).Activity = a
		row(a.TenantID).RateSpan = rateSpan(v.Now, a.FirstEnqueuedAt)
	}
	for _, c := range counts {
		o := row(c.TenantID)
		o.Counts[c.Status] += c.Count
		o.Total += c.Count
	}
	for _, p := range paused {
		row(p.TenantID).Paused = append(row(p.TenantID).Paused, p)
	}
	for i := range verifs {
		row(verifs[i].TenantID).Verification = &verifs[i]
	}
	var list []*tenantOverview
	for _, o := range rows {
		list = append(list, o)
	}
	slices.SortFunc(list, func(a, b *tenantOverview) int { return strings.Compare(a.Tenant, b.Tenant) })
	v.Title, v.Section, v.Live = "Overview", "overview", true
	v.Data = map[string]any{"Tenants": list, "Window": fmt.Sprintf("%.0f minutes", rateWindow.Minutes()), "Activity": act}
	d.render(w, r, http.StatusOK, "overview", v)
}

// listFilter is the jobs page's query, read and checked.
type listFilter struct {
	States    []string
	Kind      string
	Partition string
	HasPart   bool
	Cursor    string
	Chain     bool // the chain-order view (needs one partition)
	// Search is the payload text searched for (search.go); Jump a job id
	// typed in the search box instead, whose page the list redirects to.
	Search string
	Jump   uuid.UUID
}

// query returns the filter as a query string, with cursor.
func (f listFilter) query(cursor string) string {
	q := url.Values{}
	for _, s := range f.States {
		q.Add("state", s)
	}
	if f.Kind != "" {
		q.Set("kind", f.Kind)
	}
	if f.HasPart {
		q.Set("partition", f.Partition)
	}
	if f.Chain {
		q.Set("view", "chain")
	}
	if f.Search != "" {
		q.Set("q", f.Search)
	}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	return q.Encode()
}

// readFilter reads the jobs page's form. The form's conveniences (empty
// state boxes, "(default)" for the default partition, an empty partition
// box meaning any, the chain view) become the list grammar that the HTTP
// API takes too, which listquery.Parse then checks.
func readFilter(q url.Values) (listFilter, driver.ListParams, error) {
	var f listFilter
	api := url.Values{}
	for k, vs := range q {
		switch k {
		case "state":
			for _, list := range vs {
				for _, s := range strings.Split(list, ",") {
					if s != "" {
						f.States = append(f.States, s)
						api.Add("state", s)
					}
				}
			}
		case "kind":
			if k := strings.TrimSpace(q.Get("kind")); k != "" {
				f.Kind = k
				api.Set("kind", k)
			}
		case "partition":
			if part := q.Get("partition"); part != "" || q.Get("view") == "chain" {
				if part == "(default)" {
					part = ""
				}
				f.Partition, f.HasPart = part, true
				api.Set("partition", part)
			}
		case "cursor":
			f.Cursor = q.Get("cursor")
			api.Set("cursor", f.Cursor)
		case "q":
			readSearch(&f, api, q.Get("q"))
		case "view", "done", "select", "msg", "sig":
		default:
			return f, driver.ListParams{}, fmt.Errorf("unknown parameter %q", k)
		}
	}
	switch q.Get("view") {
	case "", "list":
	case "chain":
		if f.Search != "" {
			// A chain with entries left out would draw broken links.
			return f, driver.ListParams{}, errors.New("search in the list view: the chain view shows a whole chain")
		}
		f.Chain = true
		if !f.HasPart {
			f.HasPart = true // the default partition's chain
			api.Set("partition", "")
		}
	default:
		return f, driver.ListParams{}, fmt.Errorf("view %q: want list or chain", q.Get("view"))
	}
	p, e := listquery.Parse("", api)
	switch {
	case e != nil && e.Key == "cursor":
		return f, p, errors.New("the page cursor is not one this list made; start again from the first page")
	case e != nil:
		return f, p, e
	}
	p.Limit = pageSize
	return f, p, nil
}

// jobRow is one job of the list, with what the chain view draws.
type jobRow struct {
	queue.JobInfo
	THLC        string
	Node        string
	Link        string
	PrevLink    string // "" for a genesis entry
	Pos         int64
	HasChain    bool
	LinksToPrev bool // prev_link equals the link of the row above
	FirstOnPage bool // no row above on this page
}

// jobs: GET /tenants/{tenant}/jobs
func (d *Dashboard) jobs(w http.ResponseWriter, r *http.Request, v *view) {
	f, p, err := readFilter(r.URL.Query())
	if err != nil {
		d.fail(w, r, v, http.StatusBadRequest, "The filter is not valid: "+err.Error())
		return
	}
	if f.Jump != uuid.Nil {
		http.Redirect(w, r, "/tenants/"+url.PathEscape(v.Tenant)+"/jobs/"+f.Jump.String(), http.StatusSeeOther)
		return
	}
	d.bulkFlash(r, v)
	p.TenantID = v.Tenant
	list, next, err := d.backend.ListJobs(r.Context(), p)
	if err != nil {
		d.failErr(w, r, v, err, err.Error())
		return
	}
	rows := make([]jobRow, len(list))
	for i, j := range list {
		row := jobRow{JobInfo: j, FirstOnPage: i == 0}
		if e := j.Chain; e != nil {
			row.HasChain, row.THLC, row.Link, row.Pos = true, e.THLC, e.Link.String(), e.Pos
			if !e.PrevLinkNull {
				row.PrevLink = e.PrevLink.String()
			}
			if ts, err := hlc.Parse(e.THLC); err == nil {
				row.Node = ts.Node
			}
			if i > 0 && rows[i-1].HasChain {
				row.LinksToPrev = row.PrevLink != "" && row.PrevLink == rows[i-1].Link
			}
		}
		rows[i] = row
	}
	kinds, err := d.kindChoices(r.Context(), v.Tenant, f.Kind)
	if err != nil {
		d.internal(w, r, v, err)
		return
	}
	v.Title, v.Section, v.Live = "Jobs of "+v.Tenant, "jobs", f.Cursor == ""
	v.Data = map[string]any{
		// Query strings made by url.Values.Encode: safe in an href as they are.
		"Jobs": rows, "Filter": f, "Next": next, "NextQuery": template.URL(f.query(next)), "FirstQuery": template.URL(f.query("")),
		"ListQuery":  template.URL(listFilter{States: f.States, Kind: f.Kind, Partition: f.Partition, HasPart: f.HasPart, Search: f.Search}.query("")),
		"ChainQuery": template.URL(listFilter{Partition: f.Partition, HasPart: true, Chain: true}.query("")),
		"StateSet":   stateSet(f.States),
		"Kinds":      kinds, "SearchWindow": searchWindowText,
		// The bulk form comes back to this very page (bulk.go).
		"Back": f.query(f.Cursor), "SelectAll": r.URL.Query().Get("select") == "all",
		"SelectAllQuery": template.URL(f.queryWith(f.Cursor, "select", "all")), "BulkMax": maxBulk,
	}
	d.render(w, r, http.StatusOK, "jobs", v)
}

func stateSet(states []string) map[string]bool {
	m := map[string]bool{}
	for _, s := range states {
		m[s] = true
	}
	return m
}

// tenantJob reads the job named in the path if it belongs to the page's
// tenant; another tenant's job is not found, like one that does not exist.
func (d *Dashboard) tenantJob(w http.ResponseWriter, r *http.Request, v *view) (queue.JobInfo, bool) {
	id, err := uuid.Parse(r.PathValue("id"))
	if err != nil {
		d.fail(w, r, v, http.StatusBadRequest, "Not a job id (want a UUID): "+r.PathValue("id"))
		return queue.JobInfo{}, false
	}
	info, err := d.cfg.Queue.GetInTenant(r.Context(), v.Tenant, id)
	if errors.Is(err, queue.ErrJobNotFound) {
		d.failErr(w, r, v, err, "Tenant "+v.Tenant+" has no job "+id.String()+".")
		return queue.JobInfo{}, false
	}
	if err != nil {
		d.internal(w, r, v, err)
		return queue.JobInfo{}, false
	}
	return info, true
}

// job: GET /tenants/{tenant}/jobs/{id}
func (d *Dashboard) job(w http.ResponseWriter, r *http.Request, v *view) {
	info, ok := d.tenantJob(w, r, v)
	if !ok {
		return
	}
	data := map[string]any{"Job": info, "Retryable": info.Status.Retryable(), "Cancellable": !info.Status.Finished()}
	if pretty, err := indentJSON(info.Payload); err == nil {
		data["Payload"] = pretty
	} else {
		data["Payload"] = string(info.Payload)
	}
	if e := info.Chain; e != nil {
		data["Entry"] = e
		if ts, err := hlc.Parse(e.THLC); err == nil {
			data["Node"] = ts.Node
			data["Stamped"] = time.UnixMilli(ts.Physical).UTC()
		}
	}
	actions, err := d.backend.Actions(r.Context(), driver.ActionFilter{TenantID: v.Tenant, JobID: info.JobID, Limit: 20})
	if err != nil {
		d.internal(w, r, v, err)
		return
	}
	data["Actions"] = actions
	if d.cfg.Audit != nil && info.InHLC {
		proof, err := audit.ProveInclusion(r.Context(), d.cfg.Audit, driver.JobRef{TenantID: v.Tenant, JobID: info.JobID})
		switch {
		case errors.Is(err, audit.ErrNotCovered) || errors.Is(err, audit.ErrTreeDamaged) || errors.Is(err, driver.ErrRecordNotFound):
			data["ProofError"] = err.Error() // not yet covered by a checkpoint, typically
		case err != nil:
			d.log.Error("dashboard: reading an inclusion proof failed", "job_id", info.JobID, "error", err)
			data["ProofError"] = "The proof could not be read; the service log has the details."
		default:
			b, _ := json.Marshal(proof) // a Proof always marshals
			data["Proof"] = proof
			data["ProofJSON"] = string(b)
		}
	}
	if d.cfg.PublicKey != nil {
		data["PublicKey"] = d.cfg.PublicKey.String()
	}
	v.Title, v.Section = "Job "+info.JobID.String(), "jobs"
	v.Data = data
	d.render(w, r, http.StatusOK, "job", v)
}

func indentJSON(b []byte) (string, error) {
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return "", err
	}
	return out.String(), nil
}

// jobActions are the confirmed actions on a job.
var jobActions = map[string]struct{ Verb, Explain string }{
	"retry": {"Retry", "The job goes back to the queue as pending, to run now, with its attempts reset to 0 so it gets " +
		"its max attempts again. Its last error stays visible until the next attempt. Its chain entry does not change: " +
		"the chain records the enqueue, not the runs."},
	"cancel": {"Cancel", "The job is cancelled. A worker holding it loses its lease and cannot complete it. " +
		"Its chain entry does not change."},
}

// confirmJobAction: GET /tenants/{tenant}/jobs/{id}/{retry|cancel} asks
// for confirmation with a form that works without JavaScript.
func (d *Dashboard) confirmJobAction(w http.ResponseWriter, r *http.Request, v *view) {
	act, ok := jobActions[r.PathValue("action")]
	if !ok {
		d.fail(w, r, v, http.StatusNotFound, "There is no such page.")
		return
	}
	info, ok := d.tenantJob(w, r, v)
	if !ok {
		return
	}
	v.Title, v.Section = act.Verb+" job "+info.JobID.String(), "jobs"
	v.Data = map[string]any{"Job": info, "Action": r.PathValue("action"), "Verb": act.Verb, "Explain": act.Explain,
		"Allowed": r.PathValue("action") == "retry" && info.Status.Retryable() || r.PathValue("action") == "cancel" && !info.Status.Finished()}
	d.render(w, r, http.StatusOK, "confirm_job", v)
}

// jobAction: POST /tenants/{tenant}/jobs/{id}/{retry|cancel}
func (d *Dashboard) jobAction(w http.ResponseWriter, r *http.Request, v *view) {
	action := r.PathValue("action")
	if _, ok := jobActions[action]; !ok {
		d.fail(w, r, v, http.StatusNotFound, "There is no such action.")
		return
	}
	info, ok := d.tenantJob(w, r, v)
	if !ok {
		return
	}
	var err error
	done := "retried"
	if action == "retry" {
		err = d.cfg.Queue.Retry(r.Context(), info.JobID)
	} else {
		done = "cancelled"
		err = d.cfg.Queue.CancelInTenant(r.Context(), v.Tenant, info.JobID, "cancelled in the dashboard by "+v.Principal.Name)
	}
	if err != nil {
		msg := fmt.Sprintf("The job is already %s.", info.Status)
		if errors.Is(err, queue.ErrNotRetryable) {
			msg = fmt.Sprintf("The job is %s: only a failed or cancelled job can be retried.", info.Status)
		}
		d.failErr(w, r, v, err, msg)
		return
	}
	d.record(r, driver.OperatorAction{TenantID: v.Tenant, JobID: info.JobID, Action: action, Actor: v.Principal.Name,
		Detail: "was " + string(info.Status), At: v.Now})
	http.Redirect(w, r, "/tenants/"+url.PathEscape(v.Tenant)+"/jobs/"+info.JobID.String()+"?done="+done, http.StatusSeeOther)
}

// record keeps an operator action; the action itself is done, so a
// failure to record it is logged, not shown.
func (d *Dashboard) record(r *http.Request, a driver.OperatorAction) {
	if err := d.backend.RecordAction(r.Context(), a); err != nil {
		d.log.Error("dashboard: recording an operator action failed", "action", a.Action, "tenant", a.TenantID, "error", err)
	}
}

// checkpointRow is a chain's latest checkpoint with its signature status.
type checkpointRow struct {
	Key       chain.Key
	Size      int64
	Root      string
	KeyName   string
	CreatedAt time.Time
	Signature string // "valid", "invalid: ...", or "not checked: no public key"
	Valid     bool
	Note      string
}

type snapshotRow struct {
	driver.Snapshot
	Signature string
	Valid     bool
}

// chainHealth: GET /tenants/{tenant}/chain
func (d *Dashboard) chainHealth(w http.ResponseWriter, r *http.Request, v *view) {
	ctx := r.Context()
	data := map[string]any{"HasKey": d.cfg.PublicKey != nil, "HasAudit": d.cfg.Audit != nil}
	if vs, err := d.backend.Verifications(ctx, v.Tenant); err != nil {
		d.internal(w, r, v, err)
		return
	} else if len(vs) == 1 {
		data["Verification"] = vs[0]
		var issues []audit.Issue
		if err := json.Unmarshal(vs[0].Issues, &issues); err == nil {
			data["Issues"] = issues
		}
	}
	if as := d.cfg.Audit; as != nil {
		keys, err := as.Chains(ctx, v.Tenant)
		if err != nil {
			d.internal(w, r, v, err)
			return
		}
		var cps []checkpointRow
		for _, k := range keys {
			list, err := as.Checkpoints(ctx, k, 1)
			if err != nil {
				d.internal(w, r, v, err)
				return
			}
			for _, cp := range list {
				row := checkpointRow{Key: k, Size: cp.Size, Root: fmt.Sprintf("%x", cp.Root[:]), KeyName: cp.KeyName,
					CreatedAt: cp.CreatedAt, Note: string(cp.Note)}
				row.Signature, row.Valid = d.checkCheckpoint(cp, k)
				cps = append(cps, row)
			}
		}
		data["Chains"], data["Checkpoints"] = keys, cps
		snaps, err := as.Snapshots(ctx, driver.SnapshotFilter{TenantID: v.Tenant, Limit: 1000})
		if err != nil {
			d.internal(w, r, v, err)
			return
		}
		if len(snaps) > 20 {
			snaps = snaps[len(snaps)-20:] // the latest 20, oldest first
		}
		rows := make([]snapshotRow, len(snaps))
		for i := range snaps {
			rows[i] = snapshotRow{Snapshot: snaps[i]}
			rows[i].Signature, rows[i].Valid = d.checkSnapshot(ctx, &snaps[i])
		}
		data["Snapshots"] = rows
	}
	v.Title, v.Section = "Chain health of "+v.Tenant, "chain"
	v.Data = data
	d.render(w, r, http.StatusOK, "chain", v)
}

func (d *Dashboard) checkCheckpoint(cp driver.Checkpoint, k chain.Key) (string, bool) {
	if d.cfg.PublicKey == nil {
		return "not checked: the service has no public key", false
	}
	body, _, err := audit.OpenCheckpoint(cp.Note, d.cfg.PublicKey)
	if err != nil {
		return "invalid: " + err.Error(), false
	}
	if !audit.OriginOf(body.Origin, k) || body.Size != cp.Size || body.Root != cp.Root {
		return "invalid: the signed note does not say what the row says", false
	}
	return "valid", true
}

func (d *Dashboard) checkSnapshot(ctx context.Context, sn *driver.Snapshot) (string, bool) {
	if d.cfg.PublicKey == nil {
		return "not checked: the service has no public key", false
	}
	c, err := audit.VerifySnapshot(ctx, d.cfg.Audit, sn, d.cfg.PublicKey)
	switch {
	case err != nil:
		return "not checked: " + err.Error(), false
	case !c.Valid:
		return "invalid: " + strings.Join(c.Problems, "; "), false
	}
	return "valid: signature, statement and range", true
}

// verify: POST /tenants/{tenant}/verify runs the verifier now and shows
// the chain health page with its result.
func (d *Dashboard) verify(w http.ResponseWriter, r *http.Request, v *view) {
	if _, err := d.cfg.Verify(r.Context(), v.Tenant, "dashboard:"+v.Principal.Name); err != nil {
		d.internal(w, r, v, err)
		return
	}
	http.Redirect(w, r, "/tenants/"+url.PathEscape(v.Tenant)+"/chain", http.StatusSeeOther)
}

// queues: GET /tenants/{tenant}/queues
func (d *Dashboard) queues(w http.ResponseWriter, r *http.Request, v *view) {
	paused, err := d.backend.PausedQueues(r.Context(), v.Tenant)
	if err != nil {
		d.internal(w, r, v, err)
		return
	}
	actions, err := d.backend.Actions(r.Context(), driver.ActionFilter{TenantID: v.Tenant, Limit: 20})
	if err != nil {
		d.internal(w, r, v, err)
		return
	}
	wholePaused := false
	for _, p := range paused {
		wholePaused = wholePaused || p.Kind == ""
	}
	kinds, workerQueues, total, err := d.queueRows(r.Context(), v.Tenant, v.Now, paused)
	if err != nil {
		d.internal(w, r, v, err)
		return
	}
	v.Title, v.Section = "Queues of "+v.Tenant, "queues"
	v.Data = map[string]any{"Paused": paused, "WholePaused": wholePaused, "Actions": actions,
		"Kinds": kinds, "WorkerQueues": workerQueues, "Total": total, "Worker": d.cfg.Worker, "Recent": windowWords(kindRecentWindow)}
	d.render(w, r, http.StatusOK, "queues", v)
}

// queueKey reads the kind of a queue action (empty: the whole queue).
func queueKey(tenant, kind string) (driver.QueueKey, error) {
	k := driver.QueueKey{TenantID: tenant, Kind: strings.TrimSpace(kind)}
	if k.Kind != "" {
		if err := chain.ValidateKind(k.Kind); err != nil {
			return k, err
		}
	}
	return k, nil
}

// confirmQueueAction: GET /tenants/{tenant}/queues/{pause|resume}?kind=
func (d *Dashboard) confirmQueueAction(w http.ResponseWriter, r *http.Request, v *view) {
	action := r.PathValue("action")
	if action != "pause" && action != "resume" {
		d.fail(w, r, v, http.StatusNotFound, "There is no such page.")
		return
	}
	k, err := queueKey(v.Tenant, r.URL.Query().Get("kind"))
	if err != nil {
		d.fail(w, r, v, http.StatusBadRequest, "Not a kind: "+err.Error())
		return
	}
	v.Title, v.Section = strings.ToUpper(action[:1])+action[1:]+" queue "+k.String(), "queues"
	v.Data = map[string]any{"Action": action, "Key": k}
	d.render(w, r, http.StatusOK, "confirm_queue", v)
}

// queueAction: POST /tenants/{tenant}/queues/{pause|resume}
func (d *Dashboard) queueAction(w http.ResponseWriter, r *http.Request, v *view) {
	action := r.PathValue("action")
	if action != "pause" && action != "resume" {
		d.fail(w, r, v, http.StatusNotFound, "There is no such action.")
		return
	}
	k, err := queueKey(v.Tenant, r.PostFormValue("kind"))
	if err != nil {
		d.fail(w, r, v, http.StatusBadRequest, "Not a kind: "+err.Error())
		return
	}
	done := "paused"
	if action == "pause" {
		err = d.backend.PauseQueue(r.Context(), driver.PauseParams{Queue: k, By: v.Principal.Name, Now: v.Now})
	} else {
		done = "resumed"
		var was bool
		if was, err = d.backend.ResumeQueue(r.Context(), k); err == nil && !was {
			d.fail(w, r, v, http.StatusConflict, "Queue "+k.String()+" was not paused.")
			return
		}
	}
	if err != nil {
		d.internal(w, r, v, err)
		return
	}
	d.record(r, driver.OperatorAction{TenantID: v.Tenant, Kind: k.Kind, Action: action, Actor: v.Principal.Name, At: v.Now})
	http.Redirect(w, r, "/tenants/"+url.PathEscape(v.Tenant)+"/queues?done="+done, http.StatusSeeOther)
}

// nodeRow is a node as the nodes page shows it.
type nodeRow struct {
	driver.NodeStatus
	HLCAheadMS   int64 // the node's HLC physical time minus its wall clock when it reported
	HasHLC       bool
	ReportBehind time.Duration // this server's clock minus the node's report time
	This         bool
}

// nodes: GET /nodes (admins only: nodes serve every tenant)
func (d *Dashboard) nodes(w http.ResponseWriter, r *http.Request, v *view) {
	if !v.Principal.Admin {
		d.fail(w, r, v, http.StatusForbidden, "Only an admin token may see the nodes.")
		return
	}
	list, err := d.backend.Nodes(r.Context())
	if err != nil {
		d.internal(w, r, v, err)
		return
	}
	rows := make([]nodeRow, len(list))
	for i, n := range list {
		rows[i] = nodeRow{NodeStatus: n, This: n.NodeID == d.cfg.NodeID}
		if n.Reported {
			rows[i].ReportBehind = v.Now.Sub(n.Now)
			// A node that has issued no timestamp (legacy mode) reports
			// the zero one, whose "drift" would be the whole epoch.
			if ts, err := hlc.Parse(n.LastHLC); err == nil && ts.Physical > 0 {
				rows[i].HasHLC, rows[i].HLCAheadMS = true, ts.Physical-n.Now.UnixMilli()
			}
		}
	}
	clock := d.cfg.Queue.Clock()
	v.Title, v.Section, v.Live = "Nodes", "nodes", true
	v.Data = map[string]any{"Nodes": rows, "MaxDrift": clock.MaxDrift(), "Current": clock.Current().String()}
	d.render(w, r, http.StatusOK, "nodes", v)
}

func fsGlob(pattern string) ([]string, error) { return fs.Glob(templateFiles, pattern) }

// pickTenant: GET /tenants?tenant= is the tenant picker's form without
// JavaScript.
func (d *Dashboard) pickTenant(w http.ResponseWriter, r *http.Request, v *view) {
	t := r.URL.Query().Get("tenant")
	if chain.ValidateTenantID(t) != nil {
		http.Redirect(w, r, "/", http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/tenants/"+url.PathEscape(t)+"/jobs", http.StatusSeeOther)
}
