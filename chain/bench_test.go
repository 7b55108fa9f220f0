package chain

import "testing"

// A realistic job payload of about 200 bytes.
var benchPayload = []byte(`{"to":"alice@example.com","subject":"Your invoice #2024-0042 is ready",` +
	`"template":"invoice-ready","locale":"de-DE","amount":{"value":129.95,"currency":"EUR"},` +
	`"attempt":1,"tags":["billing","email"]}`)

var (
	sinkHash Hash
	sinkErr  error
)

func BenchmarkLink(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		sinkHash, sinkErr = Link(testPrev, testJobID, testTHLC, testHash)
	}
}

func BenchmarkPayloadHash(b *testing.B) {
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPayload)))
	for b.Loop() {
		sinkHash, sinkErr = PayloadHash(benchPayload)
	}
}

func BenchmarkJobID(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		id, err := JobID("acme", "customer/42", "email.send", "", testHash)
		sinkHash[0], sinkErr = id[0], err
	}
}
