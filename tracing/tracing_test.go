package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordo-sched/ordo"
	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/internal/testdb"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/tracing"
	"github.com/ordo-sched/ordo/worker"
)

type invoiceArgs struct {
	Number int `json:"number"`
}

func (invoiceArgs) Kind() string { return "invoice.send" }

// attr is the value of key among a span's attributes.
func attr(s sdktrace.ReadOnlySpan, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes() {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// Issue 15: a span per insert and per run of a job, carrying tenant,
// kind, job id, t_hlc and attempt; the run's span is a child of the
// insert's through the trace context the job carries outside its
// payload; a failed attempt's span says so; a job inserted without
// tracing runs under a root span. With the SDK's in-memory recorder, on
// both backends.
func TestSpans(t *testing.T) {
	testdb.EachBackend(t, func(t *testing.T, url string) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		q, err := ordo.Open(ctx, url, ordo.Config{Node: "trace-node", Hlc: queue.Options{EnableHlcOrdering: true}})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Close()

		recorder := tracetest.NewSpanRecorder()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))
		mw := tracing.New(tracing.Config{TracerProvider: tp})

		var runs atomic.Int32
		workers := worker.NewWorkers()
		worker.AddWorker(workers, worker.WorkFunc[invoiceArgs](func(ctx context.Context, job *worker.Job[invoiceArgs]) error {
			if !trace.SpanContextFromContext(ctx).IsValid() {
				return worker.NoRetry(errors.New("the handler runs outside the job's span"))
			}
			if job.Args.Number == 1 && job.Attempt == 1 {
				runs.Add(1)
				return errors.New("printer jammed")
			}
			runs.Add(1)
			return nil
		}), worker.KindOptions{Backoff: func(int) time.Duration { return 0 }})
		done := make(chan uuid.UUID, 16)
		client, err := worker.NewClient(q, worker.Config{
			Workers:          workers,
			InsertMiddleware: []worker.InsertMiddleware{mw.Insert()},
			WorkMiddleware:   []worker.WorkMiddleware{mw.Work()},
			OnEvent: func(e worker.Event) {
				if e.Type == worker.EventJobSucceeded || (e.Type == worker.EventJobFailed && !e.Retried) {
					done <- e.Lease.JobID
				}
			},
		})
		if err != nil {
			t.Fatal(err)
		}

		// A request's span, under which the application inserts.
		reqCtx, request := tp.Tracer("app").Start(ctx, "POST /invoices")
		traced, err := client.Insert(reqCtx, "acme", invoiceArgs{Number: 1}, nil)
		if err != nil {
			t.Fatal(err)
		}
		batch, err := client.InsertMany(reqCtx, []worker.InsertManyParams{
			{TenantID: "acme", Args: invoiceArgs{Number: 2}}, {TenantID: "acme", Args: invoiceArgs{Number: 3}}})
		if err != nil {
			t.Fatal(err)
		}
		request.End()
		// Inserted past the middleware: no trace context to follow.
		untraced, err := worker.Insert(ctx, q, "acme", invoiceArgs{Number: 4}, nil)
		if err != nil {
			t.Fatal(err)
		}

		// Tracing changes no job id: the payload alone makes it, and the
		// first insert's trace context stays with the job.
		again, err := worker.Insert(ctx, q, "acme", invoiceArgs{Number: 1}, nil)
		if err != nil || !again.Deduplicated || again.JobID != traced.JobID {
			t.Fatalf("the same args inserted without tracing: %+v, %v; want deduplicated into %s", again, err, traced.JobID)
		}
		if info, err := q.Get(ctx, traced.JobID); err != nil || info.Metadata["traceparent"] == "" {
			t.Fatalf("the traced job's metadata: %v, %v; want a traceparent", info.Metadata, err)
		}

		if err := client.Start(ctx); err != nil {
			t.Fatal(err)
		}
		want := map[uuid.UUID]bool{traced.JobID: true, batch[0].JobID: true, batch[1].JobID: true, untraced.JobID: true}
		for len(want) > 0 {
			select {
			case id := <-done:
				delete(want, id)
			case <-ctx.Done():
				t.Fatalf("jobs %v did not finish", want)
			}
		}
		if err := client.Stop(ctx); err != nil {
			t.Fatal(err)
		}

		var inserts, works []sdktrace.ReadOnlySpan
		for _, s := range recorder.Ended() {
			switch s.Name() {
			case tracing.SpanInsert:
				inserts = append(inserts, s)
			case tracing.SpanWork:
				works = append(works, s)
			}
		}
		if len(inserts) != 2 || len(works) != 5 || runs.Load() != 5 {
			t.Fatalf("%d insert spans, %d work spans, %d runs; want 2, 5 (one retry), 5", len(inserts), len(works), runs.Load())
		}
		one, many := inserts[0], inserts[1]
		for _, s := range inserts {
			if s.Parent().SpanID() != request.SpanContext().SpanID() || s.SpanKind() != trace.SpanKindProducer {
				t.Errorf("insert span %v: parent %v kind %v, want the request's span and producer", s.Attributes(), s.Parent().SpanID(), s.SpanKind())
			}
			if v, _ := attr(s, tracing.AttrTenant); v.AsString() != "acme" {
				t.Errorf("insert span tenant %q", v.AsString())
			}
			if v, _ := attr(s, tracing.AttrKind); v.AsString() != "invoice.send" {
				t.Errorf("insert span kind %q", v.AsString())
			}
		}
		if v, _ := attr(one, tracing.AttrJobID); v.AsString() != traced.JobID.String() {
			t.Errorf("insert span job id %q, want %s", v.AsString(), traced.JobID)
		}
		if v, _ := attr(one, tracing.AttrTHLC); v.AsString() != traced.THLC || traced.THLC == "" {
			t.Errorf("insert span t_hlc %q, want %q", v.AsString(), traced.THLC)
		}
		if v, _ := attr(many, tracing.AttrJobID); len(v.AsStringSlice()) != 2 || v.AsStringSlice()[1] != batch[1].JobID.String() {
			t.Errorf("batch insert span job ids %v", v.AsStringSlice())
		}
		if v, _ := attr(many, tracing.AttrBatchSize); v.AsInt64() != 2 {
			t.Errorf("batch insert span size %d", v.AsInt64())
		}

		parentOf := map[uuid.UUID]sdktrace.ReadOnlySpan{traced.JobID: one, batch[0].JobID: many, batch[1].JobID: many}
		thlcOf := map[uuid.UUID]string{traced.JobID: traced.THLC, batch[0].JobID: batch[0].THLC, batch[1].JobID: batch[1].THLC, untraced.JobID: untraced.THLC}
		attempts := map[uuid.UUID][]int64{}
		for _, s := range works {
			v, _ := attr(s, tracing.AttrJobID)
			id := uuid.MustParse(v.AsString())
			a, _ := attr(s, tracing.AttrAttempt)
			attempts[id] = append(attempts[id], a.AsInt64())
			if v, _ := attr(s, tracing.AttrTHLC); v.AsString() != thlcOf[id] {
				t.Errorf("work span of %s: t_hlc %q, want %q", id, v.AsString(), thlcOf[id])
			}
			if v, _ := attr(s, tracing.AttrTenant); v.AsString() != "acme" || s.SpanKind() != trace.SpanKindConsumer {
				t.Errorf("work span of %s: tenant %q, kind %v", id, v.AsString(), s.SpanKind())
			}
			if p, traced := parentOf[id]; traced {
				if s.Parent().SpanID() != p.SpanContext().SpanID() || s.SpanContext().TraceID() != request.SpanContext().TraceID() {
					t.Errorf("work span of %s (attempt %d) is not a child of its insert's span", id, a.AsInt64())
				}
			} else if s.Parent().IsValid() {
				t.Errorf("work span of the untraced job has a parent %v", s.Parent())
			}
			failed := id == traced.JobID && a.AsInt64() == 1
			if st := s.Status(); failed != (st.Code == codes.Error) || (failed && st.Description != "printer jammed") {
				t.Errorf("work span of %s attempt %d: status %+v", id, a.AsInt64(), st)
			}
		}
		if got := attempts[traced.JobID]; len(got) != 2 || got[0] != 1 || got[1] != 2 {
			t.Errorf("the retried job's spans are of attempts %v, want [1 2]", got)
		}
	})
}

// Tracing never fails an insert: a job whose own metadata leaves no room
// for the trace context (driver.EncodeMetadata's limits) is inserted
// without it, and the insert's span says so.
func TestFullMetadataIsInsertedWithoutTheTraceContext(t *testing.T) {
	ctx := context.Background()
	q, err := ordo.Open(ctx, testdb.SQLiteURL(t), ordo.Config{Node: "trace-node", Hlc: queue.Options{EnableHlcOrdering: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	recorder := tracetest.NewSpanRecorder()
	mw := tracing.New(tracing.Config{TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(recorder))})
	client, err := worker.NewClient(q, worker.Config{Workers: worker.NewWorkers(), InsertMiddleware: []worker.InsertMiddleware{mw.Insert()}})
	if err != nil {
		t.Fatal(err)
	}
	full := map[string]string{}
	for i := range driver.MaxMetadataKeys {
		full[fmt.Sprint("k", i)] = "v"
	}
	res, err := client.Insert(ctx, "acme", invoiceArgs{Number: 9}, &worker.InsertOpts{Metadata: full})
	if err != nil {
		t.Fatalf("an insert whose metadata has no room for the trace context: %v", err)
	}
	info, err := q.Get(ctx, res.JobID)
	if err != nil || len(info.Metadata) != driver.MaxMetadataKeys || info.Metadata["traceparent"] != "" {
		t.Fatalf("stored metadata: %d keys, traceparent %q, %v; want the caller's %d keys alone", len(info.Metadata), info.Metadata["traceparent"], err, driver.MaxMetadataKeys)
	}
	spans := recorder.Ended()
	if len(spans) != 1 || len(spans[0].Events()) != 1 || spans[0].Events()[0].Name != "ordo.trace_context_not_carried" {
		t.Fatalf("the insert's span does not say the trace context was left out: %+v", spans)
	}
	// Metadata the caller got wrong is still refused, naming its key.
	if _, err := client.Insert(ctx, "acme", invoiceArgs{Number: 10}, &worker.InsertOpts{Metadata: map[string]string{"bad key": "v"}}); err == nil || !strings.Contains(err.Error(), `"bad key"`) {
		t.Fatalf("an insert with a bad metadata key: %v", err)
	}
}
