// Package servicetest holds what the service's and the dashboard's tests
// share about the node they start: the configuration (a fixed node id, no
// worker, a loopback listener, HLC ordering with dual-write, and two
// tokens configured by hash), the manual wall clock it runs on, a token
// created in the database, a connection of the test's own to the
// database for looking at and tampering with rows, the Node that holds
// them, and how its configuration file is rewritten.
//
// It is a package of its own (not a _test.go file) because the tests of
// several packages import it (cmd/ordo's runbook test too); nothing
// outside tests should.
package servicetest

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ordo-sched/ordo/config"
	"github.com/ordo-sched/ordo/hlc"
	"github.com/ordo-sched/ordo/service"
)

const (
	AcmeToken  = "acme-secret-token"  // configured, by hash, for tenant acme
	AdminToken = "admin-secret-token" // configured, by hash, for every tenant
)

// Config is the configuration of a test node on the database at dbURL.
func Config(dbURL string) *config.Config {
	cfg := config.Defaults()
	cfg.Ordo.NodeId = "test-node"
	cfg.Ordo.Database.Url = dbURL
	cfg.Ordo.Worker.Enabled = false
	// The periodic verification would record and count verifications the
	// tests do not expect at the moment it happens to run: tests that
	// need it turn it on and trigger rounds themselves.
	cfg.Ordo.Audit.VerifyInterval = 0
	cfg.Ordo.Http.Listen = "127.0.0.1:0"
	cfg.Ordo.Log.Level = "error"
	cfg.Scheduler.Queue.Hlc.EnableHlcOrdering = true
	cfg.Scheduler.Queue.Hlc.DualWriteMode = true
	cfg.Ordo.Auth.Tokens = []config.Token{
		{Name: "acme-ci", Tenant: "acme", Sha256: service.HashToken(AcmeToken)},
		{Name: "ops", Admin: true, Sha256: service.HashToken(AdminToken)},
	}
	return cfg
}

// Wall is a manual wall clock at a fixed instant, so that the times the
// tests see do not depend on when they run.
func Wall() *hlc.ManualClock {
	return hlc.NewManualClock(time.Date(2026, 1, 8, 9, 0, 0, 0, time.UTC).UnixMilli())
}

// WriteAtomically replaces path by a new file with content (write, then
// rename), as docs/configuration.md advises for a configuration file a
// running node polls: the node never reads half a file.
func WriteAtomically(t testing.TB, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// MetricLines returns the lines of a /metrics page that mention name
// (its series, and its HELP and TYPE lines), for a failure message.
func MetricLines(page, name string) string {
	var out []string
	for _, l := range strings.Split(page, "\n") {
		if strings.Contains(l, name) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// Node is a started test node as its tests see it: the service, the URL
// its HTTP handler answers at, a connection of the test's own to its
// database with the tables' prefix, the manual wall clock it runs on, and
// a token for tenant globex created in its database.
type Node struct {
	T      *testing.T
	Svc    *service.Service
	URL    string
	Raw    *sql.DB
	Prefix string // "scheduler." on PostgreSQL
	Wall   *hlc.ManualClock
	// GlobexToken is created in the database (revocable, by its id).
	GlobexToken, GlobexTokenID string
}

// NewNode describes svc, started by the test on the database at dbURL with
// wall as its wall clock and answering at url: it opens the raw connection
// and creates the globex token.
func NewNode(t *testing.T, svc *service.Service, url, dbURL string, wall *hlc.ManualClock) *Node {
	t.Helper()
	n := &Node{T: t, Svc: svc, URL: url, Wall: wall}
	n.Raw, n.Prefix = OpenRaw(t, dbURL)
	n.GlobexToken, n.GlobexTokenID = CreateGlobexToken(t, svc)
	return n
}

// Ph is the i-th query parameter on the raw connection.
func (n *Node) Ph(i int) string { return Placeholder(n.Prefix, i) }

// CreateGlobexToken creates, in svc's database (so it can be revoked), a
// token for tenant globex, and returns its text and id.
func CreateGlobexToken(t testing.TB, svc *service.Service) (text, id string) {
	t.Helper()
	text, rec, err := service.NewToken("globex", false, "globex-worker", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Queue().Backend().CreateToken(context.Background(), rec); err != nil {
		t.Fatal(err)
	}
	return text, rec.ID
}

// OpenRaw opens a connection of the test's own to the database at dbURL,
// closed when the test ends, and returns it with the prefix of its tables
// ("scheduler." on PostgreSQL, none on SQLite).
func OpenRaw(t testing.TB, dbURL string) (*sql.DB, string) {
	t.Helper()
	var db *sql.DB
	var err error
	prefix := ""
	if path, ok := strings.CutPrefix(dbURL, "sqlite:"); ok {
		db, err = sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(10000)")
	} else {
		db, err = sql.Open("pgx", dbURL)
		prefix = "scheduler."
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return db, prefix
}

// Placeholder is the n-th query parameter on the connection OpenRaw
// returned with prefix.
func Placeholder(prefix string, n int) string {
	if prefix != "" {
		return fmt.Sprintf("$%d", n)
	}
	return "?"
}
