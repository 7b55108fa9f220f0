// Package vectorfile is the shape of docs/chain-test-vectors.json, shared
// by the command that writes it (genvectors) and the test that checks
// package chain against it, so that the two cannot drift apart. Its field
// order is the spec's, and the file's: changing it changes the file.
//
// It imports nothing of ordo, so chain's own tests can import it.
package vectorfile

import "encoding/json"

// Vector is one entry of the file: a job's inputs, then every value the
// spec derives from them.
type Vector struct {
	Description      string          `json:"description"`
	TenantID         string          `json:"tenant_id"`
	PartitionKey     string          `json:"partition_key"`
	Kind             string          `json:"kind"`
	IdempotencyKey   *string         `json:"idempotency_key"`
	Payload          json.RawMessage `json:"payload"`
	THLC             string          `json:"t_hlc"`
	PrevLink         *string         `json:"prev_link"`
	CanonicalPayload string          `json:"canonical_payload"`
	PayloadHash      string          `json:"payload_hash"`
	JobIDNameHex     string          `json:"job_id_name_hex"`
	JobID            string          `json:"job_id"`
	LinkInputHex     string          `json:"link_input_hex"`
	Link             string          `json:"link"`
}

// File is the whole file.
type File struct {
	Comment   string   `json:"comment"`
	Namespace string   `json:"namespace"`
	Vectors   []Vector `json:"vectors"`
}
