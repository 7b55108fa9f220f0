package chain

import (
	"errors"
	"strings"
	"testing"

	"github.com/google/uuid"
)

func mustJobID(t *testing.T, tenantID, partitionKey, kind, key string, payloadHash Hash) uuid.UUID {
	t.Helper()
	id, err := JobID(tenantID, partitionKey, kind, key, payloadHash)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func mustPayloadHash(t *testing.T, payload string) Hash {
	t.Helper()
	h, err := PayloadHash([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestNamespaceIsFixed(t *testing.T) {
	if Namespace.String() != "42462926-c0bc-464b-a066-4f0c456ec65c" {
		t.Fatalf("Namespace changed to %s: every job id would change", Namespace)
	}
}

func TestJobIDIsVersion5(t *testing.T) {
	id := mustJobID(t, "acme", "", "k", "", mustPayloadHash(t, `{}`))
	if id.Version() != 5 || id.Variant() != uuid.RFC4122 {
		t.Fatalf("job id %s: version %d variant %s, want 5 and RFC 4122", id, id.Version(), id.Variant())
	}
}

func TestJobIDInputsAllMatter(t *testing.T) {
	h := mustPayloadHash(t, `{"n":1}`)
	base := mustJobID(t, "acme", "p", "email.send", "", h)
	if again := mustJobID(t, "acme", "p", "email.send", "", h); again != base {
		t.Fatalf("same inputs gave %s and %s", base, again)
	}
	seen := map[uuid.UUID]string{base: "base"}
	for name, id := range map[string]uuid.UUID{
		"tenant":        mustJobID(t, "acme2", "p", "email.send", "", h),
		"partition":     mustJobID(t, "acme", "q", "email.send", "", h),
		"no partition":  mustJobID(t, "acme", "", "email.send", "", h),
		"kind":          mustJobID(t, "acme", "p", "email.sent", "", h),
		"payload":       mustJobID(t, "acme", "p", "email.send", "", mustPayloadHash(t, `{"n":2}`)),
		"key":           mustJobID(t, "acme", "p", "email.send", "k1", h),
		"other key":     mustJobID(t, "acme", "p", "email.send", "k2", h),
		"moved NUL (1)": mustJobID(t, "ab", "", "c", "", h),
		"moved NUL (2)": mustJobID(t, "a", "b", "c", "", h),
	} {
		if prev, dup := seen[id]; dup {
			t.Errorf("%s and %s share job id %s", name, prev, id)
		}
		seen[id] = name
	}
}

func TestIdempotencyKeyOverridesPayload(t *testing.T) {
	a := mustJobID(t, "acme", "", "invoice", "order-7", mustPayloadHash(t, `{"total":10}`))
	b := mustJobID(t, "acme", "", "invoice", "order-7", mustPayloadHash(t, `{"total":12}`))
	if a != b {
		t.Fatalf("same idempotency key, different payloads: %s and %s", a, b)
	}
	// Without a key, the payload hash in hex stands in its place.
	h := mustPayloadHash(t, `{"total":10}`)
	if mustJobID(t, "acme", "", "invoice", "", h) != mustJobID(t, "acme", "", "invoice", h.String(), Hash{}) {
		t.Fatalf("an absent key must mean the hex payload hash")
	}
}

func TestJobIDRefusesBadIdentifiers(t *testing.T) {
	h := mustPayloadHash(t, `{}`)
	for _, tc := range []struct{ field, tenant, partition, kind, key string }{
		{"tenant_id", "", "", "k", ""},
		{"tenant_id", "a\x00b", "", "k", ""},
		{"partition_key", "a", "x\x00y", "k", ""},
		{"kind", "a", "", "", ""},
		{"kind", "a", "", "k\x00", ""},
		{"idempotency_key", "a", "", "k", "x\x00"},
	} {
		_, err := JobID(tc.tenant, tc.partition, tc.kind, tc.key, h)
		if !errors.Is(err, ErrInvalidID) || !strings.Contains(err.Error(), tc.field) {
			t.Errorf("JobID(%q, %q, %q, %q): got %v, want ErrInvalidID naming %s", tc.tenant, tc.partition, tc.kind, tc.key, err, tc.field)
		}
	}
}
