package postgres

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/driver"
)

// scheduler_log is partitioned by range of t_hlc (migration 021): the
// first partition, scheduler_log_initial, holds what the log held before
// (from MINVALUE), the ones EnsureLogPartitions makes each cover one
// period of physical time, and scheduler_log_default whatever no
// partition covers. A bound is the 13-digit text of a millisecond
// (hlc/timestamp.go's physical field), which sorts before every t_hlc of
// that millisecond and after every t_hlc before it.

const (
	// DefaultLogPartitionPeriod is the span of physical time of each
	// scheduler_log partition the service makes, unless
	// Ordo:Database:LogPartitionPeriod says otherwise: none, by default.
	// Every lookup of the log that does not name a t_hlc (an enqueue's
	// duplicate check and predecessor, a proof) reaches every partition,
	// and in BenchmarkEnqueueByPartitions single durable enqueues ran at
	// about 1,080 jobs/s with 2 partitions, 600 with 16 and 260 with 56.
	// So partitions are for deployments that archive and drop history
	// regularly and keep few of them (docs/audit.md, "Sealing and
	// archiving"); without them, new entries go to the default partition
	// and a drop deletes rows.
	DefaultLogPartitionPeriod time.Duration = 0
	// LogPartitionsAhead is how many periods after the current one
	// EnsureLogPartitions covers, so a leader that stops for a while
	// leaves time before entries fall to the default partition.
	LogPartitionsAhead = 2
	// logPartitionLead is how soon after now a new partition may begin:
	// attaching a partition changes the default partition's range, and
	// an insert routed to the default partition just before would fail
	// (PostgreSQL re-checks the default's constraint), so no partition is
	// made for a range whose entries may already be arriving.
	logPartitionLead = time.Minute

	logTable = "scheduler_log"
)

// logPartitionLockTimeout bounds each wait for a strong lock of the
// partition DDL: ATTACH's ACCESS EXCLUSIVE on the default partition (which
// every read of the log that cannot skip it, such as an enqueue's probe
// for existing job ids, takes a share of) and the detach's on
// scheduler_log. While such a lock is waited for, the statements that
// need the table queue behind it, and they hold pool connections that
// others, such as the HLC clock's writes (hlc.Config.StoreTimeout, 5s),
// wait for: so the wait is short, and a partition not made is made next
// round, an archived range not detached is deleted row by row. A
// variable for tests.
var logPartitionLockTimeout = 500 * time.Millisecond

// logPartitionsLockKey serialises EnsureLogPartitions across nodes.
var logPartitionsLockKey = chainLockKey(chain.Key{TenantID: "ordo.log_partitions"})

var _ driver.LogPartitioner = (*DB)(nil)

// logPartition is one partition of scheduler_log and its bounds: lo ""
// for MINVALUE; both "" for the default partition.
type logPartition struct {
	name      string
	lo, hi    string
	isDefault bool
}

// partitionBound parses pg_get_expr(relpartbound): the bounds ordo makes
// are one text value each, or MINVALUE below the first.
var partitionBound = regexp.MustCompile(`^FOR VALUES FROM \((MINVALUE|'[^']*')\) TO \((MAXVALUE|'[^']*')\)$`)

// logPartitions lists the partitions of scheduler_log, from the catalog.
func logPartitions(ctx context.Context, q rowQuerier) ([]logPartition, error) {
	rows, err := q.Query(ctx, `SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'scheduler.scheduler_log'::regclass ORDER BY c.relname`)
	if err != nil {
		return nil, err
	}
	var out []logPartition
	for rows.Next() {
		var p logPartition
		var bound string
		if err := rows.Scan(&p.name, &bound); err != nil {
			return nil, err
		}
		if bound == "DEFAULT" {
			p.isDefault = true
		} else {
			m := partitionBound.FindStringSubmatch(bound)
			if m == nil || m[2] == "MAXVALUE" {
				return nil, fmt.Errorf("partition scheduler.%s of scheduler_log has bounds ordo does not make: %s", p.name, bound)
			}
			if m[1] != "MINVALUE" {
				p.lo = m[1][1 : len(m[1])-1]
			}
			p.hi = m[2][1 : len(m[2])-1]
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

// boundText is the partition bound of the millisecond ms.
func boundText(ms int64) string { return fmt.Sprintf("%013d", ms) }

// boundMillis parses a bound ordo made.
func boundMillis(b string) (int64, error) {
	ms, err := strconv.ParseInt(b, 10, 64)
	if err != nil || len(b) != 13 {
		return 0, fmt.Errorf("scheduler_log partition bound %q is not a 13-digit millisecond", b)
	}
	return ms, nil
}

// partitionSuffix names a partition by its start: p20260105 at a UTC
// midnight, p20260105_153000 at another second, p<ms> otherwise.
func partitionSuffix(startMs int64) string {
	t := time.UnixMilli(startMs).UTC()
	switch {
	case t.Equal(t.Truncate(24 * time.Hour)):
		return "p" + t.Format("20060102")
	case startMs%1000 == 0:
		return "p" + t.Format("20060102_150405")
	}
	return "p" + strconv.FormatInt(startMs, 10)
}

// createLogPartitionSQL makes partition scheduler_log_<suffix> for
// [lo, hi) as a table of its own, with its indexes named after the
// parent's (so EXPLAIN still names the guide's idx_scheduler_log_tenant_hlc)
// and the chain index, unique within it (migration 021 says why that is
// enough), then attaches it. Made empty and attached, it takes the
// parent's SHARE UPDATE EXCLUSIVE lock only, which enqueues do not wait
// for, and the default partition's, which they use only for entries no
// partition covers.
func createLogPartitionSQL(suffix, lo, hi string) string {
	name := pgx.Identifier{"scheduler", logTable + "_" + suffix}.Sanitize()
	idx := func(base string) string { return pgx.Identifier{base + "_" + suffix}.Sanitize() }
	return `CREATE TABLE ` + name + ` (LIKE scheduler.scheduler_log INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE ` + name + ` ADD CONSTRAINT ` + idx("idx_scheduler_log_tenant_hlc") + ` UNIQUE (tenant_id, t_hlc, partition_key, job_id);
CREATE UNIQUE INDEX ` + idx("idx_scheduler_log_chain") + ` ON ` + name + ` (tenant_id, partition_key, chain_pos);
CREATE INDEX ` + idx("idx_scheduler_log_job") + ` ON ` + name + ` (job_id);
CREATE INDEX ` + idx("idx_scheduler_log_periodic") + ` ON ` + name + ` (tenant_id, idempotency_key COLLATE "C")
    WHERE idempotency_key LIKE 'ordo.periodic:%';
ALTER TABLE scheduler.scheduler_log ATTACH PARTITION ` + name + ` FOR VALUES FROM ('` + lo + `') TO ('` + hi + `')`
}

// EnsureLogPartitions implements driver.LogPartitioner. Partitions follow
// one another from the end of the last one, one period each, until one
// ends at least LogPartitionsAhead periods after now's. A range is left
// to the default partition (reported, not an error) when it begins before
// now plus logPartitionLead, or when the default partition holds rows in
// it: attaching a partition over them would fail, and moving them would
// be the row-by-row copy partitioning avoids.
//
// Each partition is made in a transaction of its own whose last statement
// is the ATTACH, so the default partition's lock is held for
// milliseconds; one not had within logPartitionLockTimeout ends the call
// with an error (what was made stays; the rest is made next call). Calls
// take turns under a session advisory lock.
func (db *DB) EnsureLogPartitions(ctx context.Context, now time.Time, period time.Duration) (driver.LogPartitions, error) {
	var res driver.LogPartitions
	if period < time.Millisecond {
		return res, fmt.Errorf("postgres: scheduler_log partitions of %s: the period must be a millisecond or more", period)
	}
	step := period.Milliseconds()
	conn, err := db.Pool.Acquire(ctx)
	if err != nil {
		return res, wrap("making scheduler_log partitions", err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, logPartitionsLockKey); err != nil {
		return res, wrap("making scheduler_log partitions", err)
	}
	defer func() {
		uctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		if _, err := conn.Exec(uctx, `SELECT pg_advisory_unlock($1)`, logPartitionsLockKey); err != nil {
			conn.Conn().Close(uctx) // the session, and its lock, end
		}
	}()
	parts, err := logPartitions(ctx, conn)
	if err != nil {
		return res, wrap("making scheduler_log partitions", err)
	}
	var next int64 = -1 // the end of the last partition
	hasDefault := false
	for _, p := range parts {
		if p.isDefault {
			hasDefault = true
			continue
		}
		hi, err := boundMillis(p.hi)
		if err != nil {
			return res, fmt.Errorf("postgres: partition scheduler.%s: %w", p.name, err)
		}
		next = max(next, hi)
	}
	nowMs := now.UnixMilli()
	if next < 0 {
		next = nowMs - nowMs%(24*time.Hour).Milliseconds() // no partition at all: from today
	}
	earliest := nowMs + logPartitionLead.Milliseconds()
	until := nowMs + (LogPartitionsAhead+1)*step
	leave := func(lo, hi int64) {
		res.LeftToDefault = append(res.LeftToDefault, [2]time.Time{time.UnixMilli(lo).UTC(), time.UnixMilli(hi).UTC()})
	}
	if next < earliest {
		// The ranges from the last partition's end up to now were not
		// made in time: their entries are in the default partition.
		k := (earliest - next + step - 1) / step
		leave(next, next+k*step)
		next += k * step
	}
	for ; next < until; next += step {
		lo, hi := boundText(next), boundText(next+step)
		if hasDefault {
			var held bool
			if err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM ONLY scheduler.scheduler_log_default WHERE t_hlc >= $1 AND t_hlc < $2)`,
				lo, hi).Scan(&held); err != nil {
				return res, wrap("making scheduler_log partitions", err)
			}
			if held {
				leave(next, next+step)
				continue
			}
		}
		name := logTable + "_" + partitionSuffix(next)
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, fmt.Sprintf(`SET LOCAL lock_timeout = %d`, logPartitionLockTimeout.Milliseconds())); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, createLogPartitionSQL(partitionSuffix(next), lo, hi))
			return err
		})
		if err != nil {
			return res, wrap(fmt.Sprintf("making scheduler_log partition %s for [%s, %s)", name, lo, hi), err)
		}
		res.Created = append(res.Created, name)
	}
	return res, nil
}

// lockNotAvailable is SQLSTATE 55P03, a lock_timeout expiring.
func lockNotAvailable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "55P03"
}
