package postgres

// Where each table would live on a distributed PostgreSQL (Citus), the
// design of docs/scaling.md, in one place. distribution_test.go checks the
// migrated schema against it on the real server:
//
//   - every table of the schema (and the migrations' version table) is
//     placed here, and every table with a tenant_id column is distributed
//     unless it is placed otherwise with a reason; a partition (those of
//     scheduler_log, migration 021) is part of its partitioned table and
//     placed with it, as Citus distributes a partitioned table's
//     partitions with it;
//   - every primary key, unique constraint and unique index of a
//     distributed table contains tenant_id, except the ones keyDebts names
//     (a debt that is paid or gone must leave the list);
//   - no foreign key crosses tenants: one between two distributed tables
//     pairs tenant_id with tenant_id, a reference or local table never
//     points at a distributed one;
//   - each named hot-path statement is single-tenant or not, as the test
//     declares: in its plan, every scan of a distributed table is
//     restricted to the one tenant (tenant_id = 'T'), directly or through
//     the planner's equalities.

// placement is what becomes of a table under Citus.
type placement int

const (
	// distributed: create_distributed_table(table, 'tenant_id',
	// colocate_with => 'scheduler.scheduler_log'). A tenant's rows of
	// every distributed table are on one node, so a statement that names
	// one tenant is routed to one shard group whole.
	distributed placement = iota
	// reference: create_reference_table(table), a copy on every node:
	// small, global, read from every node, rarely written.
	reference
	// local: stays on the coordinator only, used only by it.
	local
)

func (p placement) String() string {
	return [...]string{"distributed", "reference", "local"}[p]
}

// tablePlacement is a table's placement and the reason for it.
type tablePlacement struct {
	placement placement
	why       string
}

// tablePlacements places every table the migrations create, by name:
// those in the scheduler schema by their bare name, others qualified.
var tablePlacements = map[string]tablePlacement{
	// A tenant's jobs, chains and everything derived from them.
	"jobs":                 {distributed, "the legacy side: a tenant's job rows"},
	"scheduler_log":        {distributed, "the chains, one per (tenant, partition): every append names its tenant; partitioned by t_hlc, its partitions go with it"},
	"job_state":            {distributed, "a tenant's HLC-side job state, leased and transitioned with its log entries"},
	"chain_heads":          {distributed, "one row per (tenant, partition) chain"},
	"batch_snapshot":       {distributed, "signed ranges of one tenant's chain"},
	"chain_trees":          {distributed, "one Merkle tree per (tenant, partition) chain"},
	"chain_tree_hashes":    {distributed, "the hashes of one chain's tree"},
	"chain_checkpoints":    {distributed, "signed checkpoints of one chain's tree"},
	"chain_cosignatures":   {distributed, "witness cosignatures of one chain's checkpoints"},
	"paused_queues":        {distributed, "a tenant's paused queues, read by that tenant's dequeue"},
	"verification_results": {distributed, "one row per tenant"},
	"chain_verification":   {distributed, "the periodic verifier's progress on one (tenant, partition) chain"},
	"chain_archives":       {distributed, "archived ranges of one (tenant, partition) chain"},
	"archived_jobs":        {distributed, "the job ids of a tenant's dropped entries, looked up by its enqueues"},
	"operator_actions":     {distributed, "what operators did to one tenant's jobs and queues"},
	"activity_minutes":     {distributed, "per-tenant, per-minute rollup of one tenant's jobs"},

	// Global: one row per node, per duty or per credential.
	"hlc_state":          {reference, "each node's clock bound, keyed by node; read at a node's start, written every few seconds"},
	"nodes":              {reference, "each node's clock as it last reported it, keyed by node"},
	"leadership":         {reference, "cluster-wide duties (rescue, periodic jobs, checkpoints): one lease row per duty"},
	"api_tokens":         {reference, "looked up by token hash on every request, before the tenant is known; admin tokens (tenant_id NULL) act for every tenant"},
	"dashboard_sessions": {reference, "looked up by session id hash on every dashboard request, before the tenant is known"},
	"activity_rollup":    {reference, "one row: how far activity_minutes is rolled up, for every tenant at once"},

	"public.ordo_schema_migrations": {local, "the migrations' version table (migrations.VersionTable): only the migrator reads it, on the coordinator"},
}

// keyDebts are the primary keys and unique constraints or indexes of
// distributed tables that do not contain tenant_id yet, by name, each with
// the change it needs before the table can be distributed (Citus refuses
// a unique constraint without the distribution column). None is owed:
// migrations 019 and 021 paid the five there were (docs/scaling.md,
// "Before distributing"). Nothing may be added here: a new key without
// tenant_id fails the test.
var keyDebts = map[string]string{}
