// Package audit checks and attests ordo's hash chains (scheduler_log).
//
// Invariants:
//   - Nothing here writes to scheduler_log: the verifiers only read it,
//     and what they keep (chain_tree_hashes, chain_checkpoints,
//     batch_snapshot, chain_verification) is beside it, never part of it.
//   - A verification's error means it could not be done; a chain that is
//     wrong is a result (Issues, Valid false), never an error.
//   - The full verification (Verifier, `ordo verify`) reads every entry of
//     every chain it is asked about and trusts no stored cache: the Merkle
//     tree and chain_heads are checked against the entries.
//   - The periodic verification (IncrementalVerifier, run by the service
//     every Ordo:Audit:VerifyInterval on one node) reads only the entries
//     after the position verified before, joins them to it by link, t_hlc
//     and Merkle root, and moves that position only after a round that
//     found nothing, so an issue is reported at every round until it is
//     repaired (incremental.go).
//   - The checkpointer signs only roots that follow what it signed before
//     (a consistency proof), computed from the entries, not from a changed
//     tree cache.
//   - The order check (OrderCheck, `ordo verify --order`) judges only
//     strict partitions; elsewhere it reports the share of inversions.
package audit
