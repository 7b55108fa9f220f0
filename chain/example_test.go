package chain_test

import (
	"fmt"

	"github.com/ordo-sched/ordo/chain"
)

// Two spellings of the same JSON value have one canonical form and one hash.
func ExamplePayloadHash() {
	a, _ := chain.PayloadHash([]byte(`{"to": "alice@example.com", "attempt": 1.0}`))
	b, _ := chain.PayloadHash([]byte(`{"attempt":1,"to":"alice@example.com"}`))
	canonical, _ := chain.Canonicalize([]byte(`{"to": "alice@example.com", "attempt": 1.0}`))

	fmt.Println(string(canonical))
	fmt.Println(a)
	fmt.Println(a == b)
	// Output:
	// {"attempt":1,"to":"alice@example.com"}
	// 037562160d58a8af2d00b2e4fa87371ec7048c716a63270a8b4907084056d5cd
	// true
}

// Invalid payloads are refused before they can get a hash.
func ExampleCanonicalize_invalid() {
	_, err := chain.Canonicalize([]byte(`{"amount": 1, "amount": 2}`))
	fmt.Println(err)
	// Output:
	// chain: invalid payload: Duplicate key: "amount"
}

// The same payload enqueued twice gets the same job id, so the second enqueue
// is recognised as a duplicate; an idempotency key takes the payload's place.
func ExampleJobID() {
	payloadHash, _ := chain.PayloadHash([]byte(`{"to":"alice@example.com"}`))

	first, _ := chain.JobID("acme", "", "email.send", "", payloadHash)
	again, _ := chain.JobID("acme", "", "email.send", "", payloadHash)
	keyed, _ := chain.JobID("acme", "", "email.send", "signup-4711", payloadHash)
	_, err := chain.JobID("acme corp", "", "email.send", "", payloadHash)

	fmt.Println(first)
	fmt.Println(first == again, first == keyed)
	fmt.Println(err)
	// Output:
	// 430709c6-21bf-5030-981a-d063965bc784
	// true false
	// chain: invalid tenant_id: has a space at byte 4; only A-Z a-z 0-9 . _ - are allowed
}

// Each entry's link covers the previous link, so changing or removing an
// earlier entry breaks every link after it. The first entry of a chain links
// to the zero Hash.
func ExampleLink() {
	first := chain.Entry{TenantID: "acme", THLC: "1704067200000-000000-scheduler-east-1"}
	first.PayloadHash, _ = chain.PayloadHash([]byte(`{"to":"alice@example.com"}`))
	first.JobID, _ = chain.JobID(first.TenantID, first.PartitionKey, "email.send", "", first.PayloadHash)
	first.Link, _ = chain.Link(chain.Hash{}, first.JobID, first.THLC, first.PayloadHash)

	second := chain.Entry{TenantID: "acme", THLC: "1704067200000-000001-scheduler-east-1", PrevLink: first.Link}
	second.PayloadHash, _ = chain.PayloadHash([]byte(`{"to":"bob@example.com"}`))
	second.JobID, _ = chain.JobID(second.TenantID, second.PartitionKey, "email.send", "", second.PayloadHash)
	second.Link, _ = second.ComputeLink()

	fmt.Println(first.Link)
	fmt.Println(second.Link)

	// A verifier recomputes each link and compares.
	first.PayloadHash[0] ^= 1 // tampering
	recomputed, _ := first.ComputeLink()
	fmt.Println(recomputed == first.Link)
	// Output:
	// 8dd62a09411b2753c05d5aa7323414b526697c4b330f784d2fe501df46b467f7
	// ab68e4a1209d238a481d39166becf6a641b7484c6a4e9c02f2cc80e4e4fcd491
	// false
}
