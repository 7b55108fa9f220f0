package postgres

import (
	"context"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/testdb"
)

// TestSearchIsBounded checks that a payload search reads a bounded number
// of rows however many jobs the tenant has: tenant big has 30,000 jobs on
// each side, the window is 1,000, and the search matches nothing (the
// worst case: every row of the window is read and none ends the page).
// Every statement walks its (tenant_id, order column) index, in generic
// plans too (pgx prepares statements, and PostgreSQL may switch a
// prepared statement to a generic plan, which sees no parameter values),
// and EXPLAIN ANALYZE shows at most the window read from each table. Run
// with -v to see the plans.
func TestSearchIsBounded(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenMigrated(t, Open, testdb.NewDatabase(t))
	// Generated in SQL: the plans need no valid chains. Every fourth job
	// is tenant small's; the legacy rows are other jobs than the HLC ones.
	for _, q := range []string{`
		INSERT INTO scheduler.scheduler_log (tenant_id, t_hlc, partition_key, job_id, payload_hash, prev_link, link, chain_pos,
			node_id, kind, payload, max_attempts, run_at)
		SELECT CASE WHEN i % 4 = 0 THEN 'small' ELSE 'big' END, lpad((1704067200000 + i)::text, 13, '0') || '-000000-node-a', '',
			('00000000-0000-4000-8000-' || lpad(i::text, 12, '0'))::uuid, decode(repeat('00', 32), 'hex'), NULL,
			decode(repeat('00', 32), 'hex'), i, 'node-a', 'k' || (i % 5), '{"n":' || i || '}', 3, now()
		FROM generate_series(0, 39999) AS i`, `
		INSERT INTO scheduler.job_state (job_id, tenant_id, partition_key, t_hlc, kind, status, max_attempts, run_at, updated_at)
		SELECT job_id, tenant_id, '', t_hlc, kind, 'pending', 3, now(), now() FROM scheduler.scheduler_log`, `
		INSERT INTO scheduler.jobs (id, tenant_id, kind, payload, payload_digest, created_at)
		SELECT ('00000000-0000-4000-9000-' || lpad(i::text, 12, '0'))::uuid, CASE WHEN i % 4 = 0 THEN 'small' ELSE 'big' END,
			'k' || (i % 5), jsonb_build_object('n', i), lpad(to_hex(i), 64, '0'), timestamptz '2024-01-01' + i * interval '1 ms'
		FROM generate_series(0, 39999) AS i`,
		`ANALYZE scheduler.scheduler_log`, `ANALYZE scheduler.job_state`, `ANALYZE scheduler.jobs`,
	} {
		if _, err := db.Pool.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}

	p := driver.ListParams{TenantID: "big", PayloadContains: "no such text", SearchWindow: 1000, Limit: 50}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	hlcFloor, hlcID, err := db.hlcFloor(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	legacyFloor, legacyID, err := db.legacyFloor(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if hlcFloor == "" || legacyFloor.IsZero() {
		t.Fatalf("no window floor in a tenant of 30,000 jobs: %q %v", hlcFloor, legacyFloor)
	}
	if jobs, _, err := db.ListJobs(ctx, p); err != nil || len(jobs) != 0 {
		t.Fatalf("search: %d jobs, %v", len(jobs), err)
	}

	cases := []struct {
		name, sql string
		args      []any
		index     string
		rangeCond string // the index condition that bounds the walk
		table     string
		maxRows   int // rows the walk may read: the window, and one past it where an incremental sort reads on to the end of its last group
	}{
		{"hlc floor", searchFloorHLCSQL, []any{"big", 999}, "idx_job_state_tenant_hlc", "", "job_state", 1001},
		{"legacy floor", searchFloorLegacySQL, []any{"big", 999}, "idx_jobs_tenant_created", "", "jobs", 1001},
		{"hlc list", listHLC[0], []any{"big", nil, hlcID, []string{}, "", false, "", false, 50, hlcFloor, hlcID, p.PayloadContains},
			"idx_job_state_tenant_hlc", `t_hlc >= \$10`, "job_state", 1001},
		{"hlc list, newest first", listHLC[1], []any{"big", nil, hlcID, []string{}, "", false, "", false, 50, hlcFloor, hlcID, p.PayloadContains},
			"idx_job_state_tenant_hlc", `t_hlc >= \$10`, "job_state", 1001},
		{"legacy list", listLegacy[0], []any{"big", nil, legacyID, []string{}, "", false, "", false, 50, legacyFloor, legacyID, p.PayloadContains},
			"idx_jobs_tenant_created", `created_at >= \$10`, "jobs", 1001},
		{"legacy list, newest first", listLegacy[1], []any{"big", nil, legacyID, []string{}, "", false, "", false, 50, legacyFloor, legacyID, p.PayloadContains},
			"idx_jobs_tenant_created", `created_at >= \$10`, "jobs", 1001},
		{"kinds", recentKindsSQL, []any{"big", 1000, driver.MaxKinds}, "idx_job_state_tenant_hlc", "", "job_state", 1001},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tx, err := db.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			// The generic plan: no parameter values to lean on.
			// (PREPARE outlives the transaction: DEALLOCATE.)
			for _, q := range []string{`SET LOCAL plan_cache_mode = force_generic_plan`, `PREPARE probe AS ` + c.sql} {
				if _, err := tx.Exec(ctx, q, pgx.QueryExecModeSimpleProtocol); err != nil {
					t.Fatal(err)
				}
			}
			generic := strings.Join(queryLines(t, tx, `EXPLAIN EXECUTE probe(`+literals(t, c.args)+`)`), "\n")
			if _, err := tx.Exec(ctx, `DEALLOCATE probe`, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
			t.Logf("generic plan:\n%s", generic)
			if !strings.Contains(generic, c.index) || strings.Contains(generic, "Seq Scan on "+c.table) {
				t.Fatalf("the generic plan does not walk %s:\n%s", c.index, generic)
			}
			if c.rangeCond != "" && !regexp.MustCompile(`Index Cond: .*`+c.rangeCond).MatchString(generic) {
				t.Fatalf("the generic plan's index condition is not bounded by %s:\n%s", c.rangeCond, generic)
			}
			// What a run reads: the rows of the walk on the table.
			analyzed := queryLines(t, tx, `EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) `+c.sql, c.args...)
			t.Logf("run:\n%s", strings.Join(analyzed, "\n"))
			// PostgreSQL 18 prints rows as an average per loop with two
			// decimals (rows=1001.00), earlier versions as an integer.
			walk := regexp.MustCompile(`(?:Index Scan.* on ` + c.table + `\b|Bitmap Index Scan on ` + c.index + `).*actual rows=(\d+(?:\.\d+)?) loops=(\d+)`)
			found := false
			for _, line := range analyzed {
				if m := walk.FindStringSubmatch(line); m != nil {
					found = true
					rows, err := strconv.ParseFloat(m[1], 64)
					if err != nil {
						t.Fatal(err)
					}
					loops, _ := strconv.Atoi(m[2])
					if read := rows * float64(loops); read > float64(c.maxRows) {
						t.Fatalf("%.0f rows read from %s, want at most %d:\n%s", read, c.table, c.maxRows, strings.Join(analyzed, "\n"))
					}
				}
			}
			if !found {
				t.Fatalf("no index walk on %s:\n%s", c.table, strings.Join(analyzed, "\n"))
			}
		})
	}
}

// literals writes args as SQL literals, for EXECUTE (whose arguments
// cannot be parameters of the extended protocol).
func literals(t *testing.T, args []any) string {
	s := make([]string, len(args))
	for i, a := range args {
		switch v := a.(type) {
		case nil:
			s[i] = "NULL"
		case string:
			s[i] = "'" + strings.ReplaceAll(v, "'", "''") + "'"
		case int:
			s[i] = strconv.Itoa(v)
		case bool:
			s[i] = strconv.FormatBool(v)
		case []string:
			if len(v) != 0 {
				t.Fatalf("literal of %v", v)
			}
			s[i] = "'{}'"
		case uuid.UUID:
			s[i] = "'" + v.String() + "'"
		case time.Time:
			s[i] = "'" + v.Format(time.RFC3339Nano) + "'"
		default:
			t.Fatalf("no literal for %T", a)
		}
	}
	return strings.Join(s, ", ")
}

func queryLines(t *testing.T, tx pgx.Tx, sql string, args ...any) []string {
	t.Helper()
	rows, err := tx.Query(context.Background(), sql, args...)
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return lines
}
