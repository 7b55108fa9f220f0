package chain

import (
	"encoding/hex"

	"github.com/google/uuid"
)

// Namespace is the UUID namespace of ordo job ids. It was drawn once at
// random (a version 4 UUID) and must never change: every job id ever issued
// depends on it.
var Namespace = uuid.MustParse("42462926-c0bc-464b-a066-4f0c456ec65c")

// JobID returns the deterministic id of a job: a version 5 UUID (RFC 9562,
// SHA-1) under Namespace of the name
//
//	tenantID 0x00 partitionKey 0x00 kind 0x00 key
//
// where key is idempotencyKey if it is non-empty, else the 64 lowercase hex
// characters of payloadHash. Enqueuing the same payload (or the same key)
// twice in one tenant, partition and kind therefore yields the same id, which
// is how duplicates are recognised, also across nodes that never talked to
// each other.
//
// Because the identifiers are joined by NUL, JobID validates them first: an
// identifier holding a NUL could otherwise make two different jobs share a
// name. The error wraps ErrInvalidID and names the field.
func JobID(tenantID, partitionKey, kind, idempotencyKey string, payloadHash Hash) (uuid.UUID, error) {
	for _, err := range [...]error{
		ValidateTenantID(tenantID),
		ValidatePartitionKey(partitionKey),
		ValidateKind(kind),
		ValidateIdempotencyKey(idempotencyKey),
	} {
		if err != nil {
			return uuid.Nil, err
		}
	}
	return uuid.NewSHA1(Namespace, jobIDName(tenantID, partitionKey, kind, idempotencyKey, payloadHash)), nil
}

func jobIDName(tenantID, partitionKey, kind, idempotencyKey string, payloadHash Hash) []byte {
	keyLen := len(idempotencyKey)
	if keyLen == 0 {
		keyLen = hex.EncodedLen(len(payloadHash))
	}
	name := make([]byte, 0, len(tenantID)+len(partitionKey)+len(kind)+keyLen+3)
	name = append(name, tenantID...)
	name = append(name, 0)
	name = append(name, partitionKey...)
	name = append(name, 0)
	name = append(name, kind...)
	name = append(name, 0)
	if idempotencyKey != "" {
		return append(name, idempotencyKey...)
	}
	return hex.AppendEncode(name, payloadHash[:])
}
