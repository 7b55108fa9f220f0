package chain

import (
	"github.com/google/uuid"
)

// linkInputMax is the longest link input: prev_link, job_id, the longest
// t_hlc, payload_hash.
const linkInputMax = 32 + 16 + maxTHLCLen + 32

// Link returns SHA-256(prev || jobID || tHLC || payloadHash), the link of a
// log entry, where prev is the link of the entry before it in the same
// (tenant_id, partition_key) chain, or the zero Hash for the first entry;
// jobID is its 16 bytes in RFC 9562 (big-endian) order; tHLC is the canonical
// text of the entry's HLC timestamp; payloadHash is its 32 bytes.
//
// The input needs no separators: only tHLC varies in length and it sits
// between fixed-length fields, so its length is the input length minus 80.
//
// Link runs once per appended entry and once per verified entry, so it
// allocates nothing. It refuses (ErrInvalidID) an empty tHLC or one longer
// than 85 bytes.
func Link(prev Hash, jobID uuid.UUID, tHLC string, payloadHash Hash) (Hash, error) {
	if err := ValidateTHLC(tHLC); err != nil {
		return Hash{}, err
	}
	var buf [maxTHLCLen]byte
	link, _ := linkOf(prev, jobID, buf[:copy(buf[:], tHLC)], payloadHash)
	return link, nil
}

// Entry is one row of the log as the chain sees it. Seq is the storage order
// and is not covered by the link: t_hlc is the authoritative order.
type Entry struct {
	TenantID     string
	PartitionKey string
	Seq          int64
	THLC         string
	JobID        uuid.UUID
	PayloadHash  Hash
	PrevLink     Hash // zero for the first entry of a chain (NULL in storage)
	Link         Hash
}

// ComputeLink recomputes the entry's link from its fields. A verifier compares
// it with the stored Link; a writer stores it.
func (e Entry) ComputeLink() (Hash, error) {
	return Link(e.PrevLink, e.JobID, e.THLC, e.PayloadHash)
}
