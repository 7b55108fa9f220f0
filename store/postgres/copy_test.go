package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/ordo-sched/ordo/internal/testdb"
)

// TestCopyRowsRoundTrip: every type the queue writes with binary COPY,
// NULLs included, reads back as written.
func TestCopyRowsRoundTrip(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, testdb.NewDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := registerUUID(ctx, conn); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE c (s text, j jsonb, b bytea, u uuid, ts timestamptz, n bigint, i integer, ns text)`); err != nil {
		t.Fatal(err)
	}
	id := uuid.New()
	when := time.Date(2026, 12, 1, 12, 30, 45, 123456000, time.UTC)
	name := "named"
	rows := [][]any{
		{"tab\there \\ \"q\" é", `{"a":[1,"x\\n"]}`, []byte{0, 1, 255}, id, when, int64(-7), 42, &name},
		{"", `null`, []byte{}, &id, &when, int64(1) << 40, -3, (*string)(nil)},
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := copyRows(ctx, tx, "c", []string{"s", "j", "b", "u", "ts", "n", "i", "ns"},
		[]string{"text", "jsonb", "bytea", "uuid", "timestamptz", "bigint", "integer", "text"}, rows); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r, err := conn.Query(ctx, `SELECT s, j::text, b, u, ts, n, i, ns FROM c ORDER BY n`)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var got [][]any
	for r.Next() {
		var s, j string
		var b []byte
		var u uuid.UUID
		var ts time.Time
		var n int64
		var i int
		var ns *string
		if err := r.Scan(&s, &j, &b, &u, &ts, &n, &i, &ns); err != nil {
			t.Fatal(err)
		}
		got = append(got, []any{s, j, b, u, ts.UTC(), n, i, ns})
	}
	if len(got) != 2 {
		t.Fatalf("read %d rows, want 2", len(got))
	}
	first, second := got[0], got[1]
	if first[0] != rows[0][0] || first[1] != `{"a": [1, "x\\n"]}` || string(first[2].([]byte)) != "\x00\x01\xff" ||
		first[3] != id || !first[4].(time.Time).Equal(when) || first[5] != int64(-7) || first[6] != 42 || *first[7].(*string) != name {
		t.Errorf("first row read back as %v", first)
	}
	if second[0] != "" || second[1] != "null" || len(second[2].([]byte)) != 0 || second[3] != id || second[5] != int64(1)<<40 ||
		second[6] != -3 || second[7].(*string) != nil {
		t.Errorf("second row read back as %v", second)
	}
	if _, err := encodeCopy(nil, []string{"integer"}, [][]any{{"not a number"}}); err == nil {
		t.Error("a string as integer: no error")
	}
}

// BenchmarkEncodeCopyLogRow: the binary COPY encoding of one scheduler_log
// row, as EnqueueMany writes it.
func BenchmarkEncodeCopyLogRow(b *testing.B) {
	types := []string{"text", "text", "text", "uuid", "bytea", "bytea", "bytea", "timestamptz", "bigint",
		"text", "text", "text", "integer", "integer", "timestamptz", "text"}
	hash := make([]byte, 32)
	now := time.Now()
	row := []any{"acme", "1764590400000-000001-node-a", "", uuid.New(), hash, hash, hash, now, int64(41), "node-a",
		"email.send", `{"to":"alice@example.com","template":"welcome"}`, 0, 25, now, (*string)(nil)}
	rows := make([][]any, 1000)
	for i := range rows {
		rows[i] = row
	}
	buf := make([]byte, 0, 1<<20)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		var err error
		if buf, err = encodeCopy(buf[:0], types, rows); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(rows)), "ns/row")
}
