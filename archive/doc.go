// Package archive seals ranges of a chain into plain files, verifies them
// offline, and drops the archived entries from the database while the
// chain still verifies from its genesis (docs/audit.md, "Sealing and
// archiving").
//
// Invariants:
//   - An archive holds one contiguous range [start, end) of one chain: a
//     chain's archives follow one another from its genesis without gaps
//     or overlap (driver.LogArchive records them in that order), and the
//     first entry of each links to the last entry of the one before.
//   - An archive is self-describing and checkable with the log's public
//     key alone: every entry with its payload (the checks of
//     docs/chain-spec.md section 8 need nothing else), a checkpoint signed
//     at end whose root the entries, joined to the archives before them,
//     must hash to, and the tlog tiles of the tree up to end.
//   - Write changes nothing in the database but the record of the range
//     and the checkpoint it signs; the files are synced to disk before the
//     range is recorded.
//   - Drop removes entries only after the archive, read back from disk,
//     verifies and matches the entries the database holds and the
//     database's record of the range before it; the database keeps the
//     range's last link and tree edge, so the chain goes on and the next
//     entry is checked against it.
package archive
