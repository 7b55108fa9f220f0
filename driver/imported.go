package driver

import (
	"github.com/ordo-sched/ordo/chain"
	"github.com/ordo-sched/ordo/hlc"
)

// ImportSource says where a job merged from an offline node's bundle came
// from, and where the importer planned to put it. The log keeps the
// source fields beside the central entry (source_node, source_t_hlc,
// source_prev_link, source_link), outside every hash.
type ImportSource struct {
	Node     string
	THLC     string     // the entry's t_hlc in the offline chain
	PrevLink chain.Hash // its prev_link there; zero with PrevNull
	PrevNull bool       // it was the offline chain's genesis
	Link     chain.Hash // its link there
	// Planned is the central t_hlc the importer chose (ImportTimestamp):
	// the source t_hlc when it is after the chain's head, else the
	// smallest timestamp after the head that names the source node.
	Planned hlc.Timestamp
}

// ImportTimestamp is the central t_hlc of an imported entry whose source
// t_hlc is src, appended after head (zero: genesis): src when it sorts
// after head, else the smallest timestamp after head that names src's
// node. It depends on nothing but its arguments, so every node that
// imports the same bundles onto the same chains writes the same bytes.
func ImportTimestamp(head, src hlc.Timestamp) hlc.Timestamp {
	if src.After(head) {
		return src
	}
	next := hlc.Timestamp{Physical: head.Physical, Logical: head.Logical + 1, Node: src.Node}
	if head.Logical >= hlc.MaxLogical {
		next = hlc.Timestamp{Physical: head.Physical + 1, Node: src.Node}
	}
	return next
}

// ReadImportSource builds an entry's ImportSource from its stored source
// columns; nil when node is NULL (an entry appended here).
func ReadImportSource(node, tHLC *string, prev, link []byte) *ImportSource {
	if node == nil {
		return nil
	}
	s := &ImportSource{Node: *node, PrevNull: prev == nil}
	if tHLC != nil {
		s.THLC = *tHLC
	}
	s.PrevLink, _ = chain.HashFromBytes(prev)
	s.Link, _ = chain.HashFromBytes(link)
	return s
}
