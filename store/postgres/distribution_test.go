package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/migrations"
)

// The rules a distributed PostgreSQL (Citus, docs/scaling.md) needs of the
// schema, checked on the migrated schema of the real server through
// pg_catalog. distribution.go places the tables.

// catalog is what the checks read the catalog through.
type catalog interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// placementOf returns the placement of a table named as pg_catalog names it
// (schema, name), and whether it is placed at all.
func placementOf(schema, name string) (tablePlacement, bool) {
	key := schema + "." + name
	if schema == "scheduler" {
		key = name
	}
	p, ok := tablePlacements[key]
	return p, ok
}

// placedAs is the name, in SQL, under which the table c (an alias of
// pg_class) is placed: a partition (relkind 'r' with relispartition, such
// as scheduler_log's, migration 021) is part of the partitioned table at
// the root of its tree, and placed as that table; any other table as
// itself.
const placedAs = `(SELECT r.relname FROM pg_class r WHERE r.oid = CASE WHEN c.relispartition THEN pg_partition_root(c.oid) ELSE c.oid END)`

// partitionRoots maps each partition of a table of the scheduler schema
// to the partitioned table at the root of its tree, both by bare name.
func partitionRoots(ctx context.Context, db catalog) (map[string]string, error) {
	rows, err := db.Query(ctx, `SELECT c.relname, `+placedAs+` FROM pg_class c
		WHERE c.relispartition AND c.relkind IN ('r', 'p') AND c.relnamespace = 'scheduler'::regnamespace`)
	if err != nil {
		return nil, err
	}
	roots := map[string]string{}
	for rows.Next() {
		var part, root string
		if err := rows.Scan(&part, &root); err != nil {
			return nil, err
		}
		roots[part] = root
	}
	return roots, rows.Err()
}

// unplacedTables lists the tables of the schema that tablePlacements does
// not place, or that hold tenant_id but are not distributed and not placed
// otherwise with a reason, and placed tables that no longer exist. A
// partition is placed as the table it is part of (placedAs): Citus
// distributes a partitioned table with its partitions.
func unplacedTables(ctx context.Context, db catalog) ([]string, error) {
	rows, err := db.Query(ctx, `
		SELECT n.nspname, c.relname, `+placedAs+`,
		       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND (n.nspname = 'scheduler' OR (n.nspname = 'public' AND c.relname = $1))`,
		migrations.VersionTable)
	if err != nil {
		return nil, err
	}
	var problems []string
	seen := map[string]bool{}
	for rows.Next() {
		var schema, name, placed string
		var hasTenant bool
		if err := rows.Scan(&schema, &name, &placed, &hasTenant); err != nil {
			return nil, err
		}
		p, ok := placementOf(schema, placed)
		if placed != name {
			name = placed
			if ok {
				continue // a part of a placed table, checked as that table
			}
		}
		switch {
		case !ok:
			problems = append(problems, fmt.Sprintf("table %s.%s is not placed in tablePlacements (distribution.go)", schema, name))
		case hasTenant && p.placement != distributed && p.why == "":
			problems = append(problems, fmt.Sprintf("table %s.%s holds tenant_id but is %s without a reason", schema, name, p.placement))
		case !hasTenant && p.placement == distributed:
			problems = append(problems, fmt.Sprintf("table %s.%s is distributed but has no tenant_id column", schema, name))
		}
		if schema == "scheduler" {
			seen[name] = true
		} else {
			seen[schema+"."+name] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for name := range tablePlacements {
		if !seen[name] {
			problems = append(problems, fmt.Sprintf("tablePlacements places %s, which the schema does not have", name))
		}
	}
	sort.Strings(problems)
	return problems, nil
}

// keysWithoutTenant lists the primary keys, unique and exclusion
// constraints and unique indexes of distributed tables that do not contain
// tenant_id and are not keyDebts, and keyDebts that are paid or gone. The
// keys of a partition are its table's (placedAs): those it inherits, and
// its own, such as the per-partition idx_scheduler_log_chain_*.
func keysWithoutTenant(ctx context.Context, db catalog) ([]string, error) {
	return keysWithoutTenantOwing(ctx, db, keyDebts)
}

// keysWithoutTenantOwing is keysWithoutTenant with debts for keyDebts.
func keysWithoutTenantOwing(ctx context.Context, db catalog, debts map[string]string) ([]string, error) {
	// Constraints by their columns; unique indexes that back no
	// constraint by theirs (an expression is not tenant_id).
	rows, err := db.Query(ctx, `
		SELECT c.relname, `+placedAs+`, con.conname, con.contype::text,
		       pg_get_constraintdef(con.oid),
		       EXISTS (SELECT 1 FROM unnest(con.conkey) k JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k
		               WHERE a.attname = 'tenant_id')
		FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid
		WHERE c.relnamespace = 'scheduler'::regnamespace AND con.contype IN ('p', 'u', 'x')
		UNION ALL
		SELECT c.relname, `+placedAs+`, i.relname, 'i', pg_get_indexdef(i.oid),
		       EXISTS (SELECT 1 FROM unnest(ix.indkey::int2[]) k JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k
		               WHERE a.attname = 'tenant_id')
		FROM pg_index ix JOIN pg_class i ON i.oid = ix.indexrelid JOIN pg_class c ON c.oid = ix.indrelid
		WHERE c.relnamespace = 'scheduler'::regnamespace AND ix.indisunique
		  AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = ix.indexrelid AND con.contype IN ('p', 'u', 'x'))`)
	if err != nil {
		return nil, err
	}
	var problems []string
	owed := map[string]bool{}
	for rows.Next() {
		var table, placed, name, kind, def string
		var hasTenant bool
		if err := rows.Scan(&table, &placed, &name, &kind, &def, &hasTenant); err != nil {
			return nil, err
		}
		if p, ok := placementOf("scheduler", placed); !ok || p.placement != distributed {
			continue
		}
		_, debt := debts[name]
		switch {
		case !hasTenant && debt:
			owed[name] = true
		case !hasTenant:
			problems = append(problems, fmt.Sprintf("%s on distributed table scheduler.%s does not contain tenant_id: %s", name, table, def))
		case debt:
			problems = append(problems, fmt.Sprintf("%s on scheduler.%s contains tenant_id now: remove it from keyDebts (distribution.go) and docs/scaling.md", name, table))
			owed[name] = true
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	for name := range debts {
		if !owed[name] {
			problems = append(problems, fmt.Sprintf("keyDebts names %s, which no distributed table has: remove it (distribution.go) and from docs/scaling.md", name))
		}
	}
	sort.Strings(problems)
	return problems, nil
}

// crossTenantForeignKeys lists the foreign keys that could join rows of
// two tenants, or that point from a table on every node (reference) or on
// the coordinator (local) at a distributed one, which Citus refuses.
func crossTenantForeignKeys(ctx context.Context, db catalog) ([]string, error) {
	rows, err := db.Query(ctx, `
		SELECT con.conname, cn.nspname, `+placedAs+`, pn.nspname, (SELECT r.relname FROM pg_class r
		           WHERE r.oid = CASE WHEN p.relispartition THEN pg_partition_root(p.oid) ELSE p.oid END), pg_get_constraintdef(con.oid),
		       ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i),
		       ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, i) JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i)
		FROM pg_constraint con
		JOIN pg_class c ON c.oid = con.conrelid JOIN pg_namespace cn ON cn.oid = c.relnamespace
		JOIN pg_class p ON p.oid = con.confrelid JOIN pg_namespace pn ON pn.oid = p.relnamespace
		WHERE con.contype = 'f' AND (cn.nspname = 'scheduler' OR pn.nspname = 'scheduler')`)
	if err != nil {
		return nil, err
	}
	var problems []string
	for rows.Next() {
		var name, cs, child, ps, parent, def string
		var from, to []string
		if err := rows.Scan(&name, &cs, &child, &ps, &parent, &def, &from, &to); err != nil {
			return nil, err
		}
		cp, _ := placementOf(cs, child)
		pp, _ := placementOf(ps, parent)
		switch {
		case pp.placement == distributed && cp.placement != distributed:
			problems = append(problems, fmt.Sprintf("foreign key %s points from %s table %s.%s at distributed %s.%s: %s", name, cp.placement, cs, child, ps, parent, def))
		case pp.placement == distributed:
			// Both distributed: the key must pair tenant_id with tenant_id,
			// so a row can only ever reference a row of its own tenant.
			paired := false
			for i := range from {
				if from[i] == "tenant_id" && to[i] == "tenant_id" {
					paired = true
				}
			}
			if !paired {
				problems = append(problems, fmt.Sprintf("foreign key %s from %s.%s to %s.%s does not pair tenant_id with tenant_id, so it can cross tenants: %s", name, cs, child, ps, parent, def))
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	sort.Strings(problems)
	return problems, nil
}

// TestSchemaFitsTenantDistribution checks the migrated schema against the
// rules of docs/scaling.md. A migration that adds a table without placing
// it, a unique key without tenant_id on a tenant's table, or a foreign key
// that can cross tenants fails here.
func TestSchemaFitsTenantDistribution(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenMigrated(t, Open, testdb.NewDatabase(t))
	for _, check := range []struct {
		name string
		f    func(context.Context, catalog) ([]string, error)
	}{
		{"every table placed", unplacedTables},
		{"unique keys contain tenant_id", keysWithoutTenant},
		{"no foreign key crosses tenants", crossTenantForeignKeys},
	} {
		t.Run(check.name, func(t *testing.T) {
			problems, err := check.f(ctx, db.Pool)
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range problems {
				t.Error(p)
			}
		})
	}
}

// TestSchemaRulesCatchViolations changes the migrated schema, inside a
// transaction that is rolled back, in each way the rules forbid, and checks
// that each check reports it: the checks above are not vacuous. The debt
// cases name debts of their own, so they do not depend on which debts
// keyDebts still lists.
func TestSchemaRulesCatchViolations(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenMigrated(t, Open, testdb.NewDatabase(t))
	owing := func(debts map[string]string) func(context.Context, catalog) ([]string, error) {
		return func(ctx context.Context, db catalog) ([]string, error) { return keysWithoutTenantOwing(ctx, db, debts) }
	}
	for _, c := range []struct {
		name  string
		ddl   string
		check func(context.Context, catalog) ([]string, error)
		want  string
		// absent, if set, must not be in any line the check reports.
		absent string
	}{
		{"unique constraint without tenant_id", `ALTER TABLE scheduler.job_state ADD CONSTRAINT bad_unique UNIQUE (job_id, t_hlc)`,
			keysWithoutTenant, "bad_unique on distributed table scheduler.job_state does not contain tenant_id", ""},
		{"unique index without tenant_id", `CREATE UNIQUE INDEX bad_index ON scheduler.chain_heads (last_link)`,
			keysWithoutTenant, "bad_index on distributed table scheduler.chain_heads does not contain tenant_id", ""},
		{"a unique key without tenant_id beside an owed one", `ALTER TABLE scheduler.job_state ADD CONSTRAINT owed_for_test UNIQUE (job_id);
			ALTER TABLE scheduler.jobs ADD CONSTRAINT bad_jobs_unique UNIQUE (id)`,
			owing(map[string]string{"owed_for_test": "a debt"}), "bad_jobs_unique on distributed table scheduler.jobs does not contain tenant_id", "owed_for_test"},
		{"a debt paid", `ALTER TABLE scheduler.job_state ADD CONSTRAINT paid_for_test UNIQUE (tenant_id, job_id, t_hlc)`,
			owing(map[string]string{"paid_for_test": "a debt"}), "paid_for_test on scheduler.job_state contains tenant_id now", ""},
		{"a debt gone", ``,
			owing(map[string]string{"gone_for_test": "a debt"}), "keyDebts names gone_for_test, which no distributed table has", ""},
		{"foreign key by job id", `ALTER TABLE scheduler.job_state ADD CONSTRAINT job_id_for_test UNIQUE (job_id);
			ALTER TABLE scheduler.operator_actions ADD CONSTRAINT bad_fk FOREIGN KEY (job_id) REFERENCES scheduler.job_state (job_id)`,
			crossTenantForeignKeys, "foreign key bad_fk from scheduler.operator_actions to scheduler.job_state does not pair tenant_id", ""},
		{"foreign key from a reference table", `ALTER TABLE scheduler.verification_results ADD CONSTRAINT vr_pk_for_test UNIQUE (tenant_id);
			ALTER TABLE scheduler.api_tokens ADD CONSTRAINT bad_ref_fk FOREIGN KEY (tenant_id) REFERENCES scheduler.verification_results (tenant_id)`,
			crossTenantForeignKeys, "foreign key bad_ref_fk points from reference table scheduler.api_tokens at distributed scheduler.verification_results", ""},
		{"table not placed", `CREATE TABLE scheduler.unplaced (tenant_id TEXT NOT NULL, id BIGINT, PRIMARY KEY (tenant_id, id))`,
			unplacedTables, "table scheduler.unplaced is not placed in tablePlacements", ""},
		{"partitioned table not placed", `CREATE TABLE scheduler.unplaced_parts (tenant_id TEXT NOT NULL, id BIGINT, PRIMARY KEY (tenant_id, id)) PARTITION BY RANGE (id);
			CREATE TABLE scheduler.unplaced_parts_1 PARTITION OF scheduler.unplaced_parts FOR VALUES FROM (0) TO (10)`,
			unplacedTables, "table scheduler.unplaced_parts is not placed in tablePlacements", ""},
		{"unique index without tenant_id on a partition", `CREATE UNIQUE INDEX bad_partition_index ON scheduler.scheduler_log_default (job_id)`,
			keysWithoutTenant, "bad_partition_index on distributed table scheduler.scheduler_log_default does not contain tenant_id", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			tx, err := db.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			if c.ddl != "" {
				if _, err := tx.Exec(ctx, c.ddl); err != nil {
					t.Fatal(err)
				}
			}
			problems, err := c.check(ctx, tx)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, c.want) }) {
				t.Fatalf("after %s the check reports %q; want a line containing %q", c.ddl, problems, c.want)
			}
			if c.absent != "" && slices.ContainsFunc(problems, func(p string) bool { return strings.Contains(p, c.absent) }) {
				t.Fatalf("after %s the check reports %q; want no line containing %q", c.ddl, problems, c.absent)
			}
		})
	}
}

// scope is how many tenants' rows a statement can touch, read off its plan.
type scope string

const (
	oneTenant   scope = "one tenant"
	manyTenants scope = "many tenants"
)

// testTenant is the tenant the statements are planned for; the planner
// prints it as 'tenant-under-test'::text wherever it restricts a scan.
const testTenant = "tenant-under-test"

// tenantRestriction matches a condition that keeps a scan to testTenant.
var tenantRestriction = regexp.MustCompile(`tenant_id = '` + testTenant + `'::text|'` + testTenant +
	`'::text = \S*tenant_id|tenant_id = ANY \('\{` + testTenant + `\}'::text\[\]\)`)

// planScope plans sql with args (EXPLAIN VERBOSE: the arguments are the
// custom plan's constants, as at run time) and returns oneTenant if every
// scan of a distributed table in the plan is restricted to testTenant,
// else manyTenants and the relations that are not.
func planScope(ctx context.Context, tx pgx.Tx, sql string, args ...any) (scope, []string, error) {
	var raw []byte
	if err := tx.QueryRow(ctx, "EXPLAIN (VERBOSE, FORMAT JSON) "+sql, args...).Scan(&raw); err != nil {
		return "", nil, err
	}
	var plans []struct{ Plan map[string]any }
	if err := json.Unmarshal(raw, &plans); err != nil {
		return "", nil, err
	}
	// A scan of a partition (scheduler_log's) is a scan of its table.
	roots, err := partitionRoots(ctx, tx)
	if err != nil {
		return "", nil, err
	}
	var loose []string
	var walk func(n map[string]any)
	walk = func(n map[string]any) {
		rel, _ := n["Relation Name"].(string)
		schema, _ := n["Schema"].(string)
		placed := rel
		if root, ok := roots[rel]; ok && schema == "scheduler" {
			placed = root
		}
		if p, ok := placementOf(schema, placed); ok && p.placement == distributed && n["Node Type"] != "ModifyTable" {
			conds := conditions(n)
			if !tenantRestriction.MatchString(conds) {
				alias, _ := n["Alias"].(string)
				loose = append(loose, fmt.Sprintf("%s %s (%s) [%s]", rel, alias, n["Node Type"], conds))
			}
		}
		children, _ := n["Plans"].([]any)
		for _, c := range children {
			if m, ok := c.(map[string]any); ok {
				walk(m)
			}
		}
	}
	for _, p := range plans {
		walk(p.Plan)
	}
	if len(loose) > 0 {
		return manyTenants, loose, nil
	}
	return oneTenant, nil, nil
}

// conditions joins the conditions that restrict a scan node, with those of
// the bitmap index scans under a bitmap heap scan.
func conditions(n map[string]any) string {
	var out []string
	for _, k := range []string{"Index Cond", "Recheck Cond", "Filter", "TID Cond"} {
		if s, ok := n[k].(string); ok {
			out = append(out, s)
		}
	}
	if n["Node Type"] == "Bitmap Heap Scan" || n["Node Type"] == "BitmapAnd" || n["Node Type"] == "BitmapOr" {
		children, _ := n["Plans"].([]any)
		for _, c := range children {
			if m, ok := c.(map[string]any); ok {
				out = append(out, conditions(m))
			}
		}
	}
	return strings.Join(out, " AND ")
}

// TestHotPathStatementScope plans each named hot-path statement for one
// tenant and checks which are single-tenant, as docs/scaling.md says: a
// single-tenant statement is one Citus routes to one shard group (a router
// query); the others fan out to every shard. A statement that loses its
// tenant restriction, or one of the many-tenant ones that gains it (then
// the docs and this table are out of date), fails here. Plans are read on
// an empty schema: the restriction is in the conditions whatever the
// access path.
func TestHotPathStatementScope(t *testing.T) {
	ctx := context.Background()
	db := testdb.OpenMigrated(t, Open, testdb.NewDatabase(t))
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	until := now.Add(time.Minute)
	id, token := uuid.New(), uuid.New()
	dequeueArgs := []any{now, 10, []string(nil), testTenant, "worker-1", token, until}
	tenantDequeue := func(p driver.DequeueParams) string { p.TenantID = testTenant; return dequeueSQL(p) }
	transitionArgs := func(tenant string) []any {
		ts := []driver.Transition{{JobID: id, TenantID: tenant, Token: token, Status: driver.StatusSucceeded, Now: now}}
		return []any{[]uuid.UUID{id}, []uuid.UUID{token}, []string{"succeeded"}, []*time.Time{nil}, []string{""}, []int32{0}, []time.Time{now},
			[]string{tenant}, batchTenants(ts)}
	}
	listArgs := []any{testTenant, (*string)(nil), uuid.Nil, []string{}, "", false, "", false, 50, "", uuid.Nil, ""}
	legacyListArgs := []any{testTenant, (*time.Time)(nil), uuid.Nil, []string{}, "", false, "", false, 50, time.Time{}, uuid.Nil, ""}

	for _, s := range []struct {
		name  string
		sql   string
		args  []any
		scope scope
	}{
		// A tenant's dequeue (the router form of the fair dequeue, docs/scaling.md).
		{"dequeueSQL(HLC, tenant)", tenantDequeue(driver.DequeueParams{HLCOrder: true}), dequeueArgs, oneTenant},
		{"dequeueSQL(HLC, tenant, chain)", tenantDequeue(driver.DequeueParams{HLCOrder: true, WithChain: true}), dequeueArgs, oneTenant},
		{"dequeueSQL(HLC, tenant, strict)", tenantDequeue(driver.DequeueParams{HLCOrder: true, StrictPartitions: true}), dequeueArgs, oneTenant},
		{"dequeueSQL(legacy, tenant)", tenantDequeue(driver.DequeueParams{}), dequeueArgs, oneTenant},
		{"dequeueSQL(legacy, tenant, strict)", tenantDequeue(driver.DequeueParams{StrictPartitions: true}), dequeueArgs, oneTenant},
		// The cross-tenant dequeue is many-tenant by design.
		{"dequeueSQL(HLC, fair)", dequeueSQL(driver.DequeueParams{HLCOrder: true, FairTenants: true}), append(slices.Clone(dequeueArgs[:3]), "", "worker-1", token, until, ""), manyTenants},
		// Enqueue.
		{"predecessorsSQL", predecessorsSQL, []any{[]string{testTenant}, []string{""}, []string{testTenant}}, oneTenant},
		{"existingSQL", existingSQL, []any{[]uuid.UUID{id}, []string{testTenant}}, oneTenant},
		// A lease's heartbeat and end: by job id, token and the lease's
		// tenant; without a tenant (driver: any tenant) they are not.
		{"extendHLCSQL", extendHLCSQL, []any{id, token, until, now, testTenant}, oneTenant},
		{"extendLegacySQL", extendLegacySQL, []any{id, token, until, now, testTenant}, oneTenant},
		{"transitionsHLCSQL", transitionsHLCSQL, transitionArgs(testTenant), oneTenant},
		{"transitionsLegacySQL", transitionsLegacySQL, transitionArgs(testTenant), oneTenant},
		{"violationHLCSQL", violationHLCSQL, []any{id, token, "chain_violation", "x", now, testTenant}, oneTenant},
		{"violationLegacySQL", violationLegacySQL, []any{id, token, "failed", "x", now, testTenant}, oneTenant},
		{"extendHLCSQL (any tenant)", extendHLCSQL, []any{id, token, until, now, ""}, manyTenants},
		{"transitionsHLCSQL (any tenant)", transitionsHLCSQL, transitionArgs(""), manyTenants},
		// A tenant's reads (API, dashboard, verification).
		{"listHLCSQL", listHLC[0], listArgs, oneTenant},
		{"listLegacySQL", listLegacy[0], legacyListArgs, oneTenant},
		{"searchFloorHLCSQL", searchFloorHLCSQL, []any{testTenant, 99}, oneTenant},
		{"searchFloorLegacySQL", searchFloorLegacySQL, []any{testTenant, 99}, oneTenant},
		{"recentKindsSQL", recentKindsSQL, []any{testTenant, 100, 20}, oneTenant},
		{"kindCountsSQL", kindCountsSQL, []any{testTenant, now}, oneTenant},
		// A job's chain entry, read with the job's tenant; without one its
		// job_state join goes by job id alone on purpose: a forged
		// duplicate of a job id in another tenant must meet the real job's
		// state, which names another t_hlc (docs/scaling.md).
		{"chainEntrySelect", chainEntrySelect, []any{[]uuid.UUID{id}, testTenant}, oneTenant},
		{"chainEntrySelect (any tenant)", chainEntrySelect, []any{[]uuid.UUID{id}, ""}, manyTenants},
	} {
		t.Run(s.name, func(t *testing.T) {
			tx, err := db.Pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(ctx)
			got, loose, err := planScope(ctx, tx, s.sql, s.args...)
			if err != nil {
				t.Fatal(err)
			}
			if got != s.scope {
				t.Errorf("%s is %s, want %s; scans not restricted to the tenant: %q", s.name, got, s.scope, loose)
			}
			t.Logf("%s: %s %q", s.name, got, loose)
		})
	}
}
