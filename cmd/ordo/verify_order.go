package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"

	"github.com/ordo-sched/ordo/audit"
	"github.com/ordo-sched/ordo/chain"
)

// orderFlags are verify's flags for --order.
type orderFlags struct {
	order     bool
	strict    []string
	strictAll bool
}

const orderHelp = `With --order, verify compares instead the order in which jobs were first started (job_state.started_at)
with their t_hlc order (docs/audit.md, "Processing order"): a job first started strictly before a job earlier in
t_hlc order is an inversion. In a strict partition (one dequeued with strict partitions, named with --strict or
--strict-all) there must be none; elsewhere the share of inversions is reported per queue (tenant and kind).
Exit status 1 when a strict partition has an inversion, or when no started job was found.`

// check refuses --strict without --order, and partition keys that are
// not valid ones.
func (f *orderFlags) check() error {
	if !f.order {
		if len(f.strict) > 0 || f.strictAll {
			return errors.New("--strict and --strict-all need --order")
		}
		return nil
	}
	if f.strictAll && len(f.strict) > 0 {
		return errors.New("give --strict PARTITION or --strict-all, not both")
	}
	for _, p := range f.strict {
		if err := chain.ValidatePartitionKey(p); err != nil {
			return fmt.Errorf("--strict %q: %w", p, err)
		}
	}
	return nil
}

func (f *orderFlags) isStrict(partition string) bool {
	return f.strictAll || slices.Contains(f.strict, partition)
}

// runOrder runs the order check on tenant, or on every tenant with a
// chain when all, prints the results and decides the exit status.
func (g *globalFlags) runOrder(ctx context.Context, out io.Writer, f *orderFlags, tenant string, all, asJSON bool) error {
	db, as, err := g.openAudit(ctx, false)
	if err != nil {
		return err
	}
	defer db.Close()
	tenants := []string{tenant}
	if all {
		keys, err := as.Chains(ctx, "")
		if err != nil {
			return err
		}
		tenants = tenants[:0]
		for _, k := range keys {
			if len(tenants) == 0 || tenants[len(tenants)-1] != k.TenantID {
				tenants = append(tenants, k.TenantID)
			}
		}
	}
	check := &audit.OrderCheck{Store: as, Strict: f.isStrict}
	results := []*audit.OrderResult{}
	var jobs, strictInversions int64
	for _, t := range tenants {
		r, err := check.Check(ctx, t)
		if err != nil {
			return err
		}
		results = append(results, r)
		jobs += r.Jobs
		strictInversions += r.StrictInversions
	}
	err = printResult(out, asJSON, results, func(w io.Writer) {
		for _, r := range results {
			fmt.Fprintf(w, "tenant %s: %d started jobs compared with their t_hlc order\n", r.TenantID, r.Jobs)
			for _, sc := range r.StrictPartitions {
				state := "in order"
				if sc.Inversions > 0 {
					state = fmt.Sprintf("OUT OF ORDER (%d inversions)", sc.Inversions)
				}
				fmt.Fprintf(w, "  strict partition %q: %d jobs: %s\n", sc.Partition, sc.Jobs, state)
				printInversions(w, sc)
			}
			for _, sc := range r.Queues {
				fmt.Fprintf(w, "  queue %s/%s: %d jobs, %d inversions (%.2f%%)\n", r.TenantID, sc.Kind, sc.Jobs, sc.Inversions, 100*sc.Share)
				printInversions(w, sc)
			}
		}
		fmt.Fprintf(w, "%d tenants, %d started jobs, %d inversions in strict partitions\n", len(results), jobs, strictInversions)
	})
	if err != nil {
		return err
	}
	if strictInversions > 0 {
		return &exitError{code: 1, err: fmt.Errorf("%d jobs of strict partitions started before a job earlier in t_hlc order", strictInversions)}
	}
	if jobs == 0 {
		return &exitError{code: 1, err: errors.New("nothing was compared: no started jobs match (check --tenant and --db; retention deletes the state of finished jobs)")}
	}
	return nil
}

func printInversions(w io.Writer, sc *audit.OrderScope) {
	for _, inv := range sc.Examples {
		fmt.Fprintln(w, "    "+inv.String())
	}
	if n := sc.Inversions - int64(len(sc.Examples)); n > 0 {
		fmt.Fprintf(w, "    ... and %d more\n", n)
	}
}
