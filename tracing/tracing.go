// Package tracing gives ordo OpenTelemetry spans: one per insert through
// a worker.Client (a batch of jobs) and one per run of a job, as worker
// middleware in the manner of River's otelriver.
//
// Invariants:
//   - A job's run span is a child of the span of the insert that enqueued
//     it, on whatever node and however long after: the insert writes its
//     span's context into each job's metadata (queue.Job.Metadata, with
//     the W3C traceparent and tracestate keys by default), which is stored
//     outside the payload, so tracing changes no job id, payload hash or
//     chain link, and a deduplicated insert keeps the first job's context.
//   - Spans carry the tenant, kind, job id, t_hlc and (for a run) the
//     attempt, under the attribute keys below; a failed attempt's span has
//     status Error and the error recorded, a snoozed one does not.
//   - Tracing never fails a job or an insert: a job without a trace
//     context (enqueued by another client, the HTTP API or before tracing
//     was on, or whose own metadata left no room for it within
//     driver.EncodeMetadata's limits) runs under a new root span.
//
// Metrics stay Prometheus (package metrics); this package only traces.
package tracing

import (
	"context"
	"maps"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/ordo-sched/ordo/driver"
	"github.com/ordo-sched/ordo/queue"
	"github.com/ordo-sched/ordo/worker"
)

// ScopeName is the instrumentation scope of ordo's tracer.
const ScopeName = "github.com/ordo-sched/ordo/tracing"

// Span names and attribute keys.
const (
	SpanInsert = "ordo.insert"
	SpanWork   = "ordo.work"

	AttrTenant       = attribute.Key("ordo.tenant")
	AttrKind         = attribute.Key("ordo.job.kind")
	AttrJobID        = attribute.Key("ordo.job.id")
	AttrTHLC         = attribute.Key("ordo.job.t_hlc")
	AttrPartition    = attribute.Key("ordo.job.partition")
	AttrAttempt      = attribute.Key("ordo.job.attempt")
	AttrMaxAttempts  = attribute.Key("ordo.job.max_attempts")
	AttrDeduplicated = attribute.Key("ordo.job.deduplicated")
	AttrBatchSize    = attribute.Key("ordo.batch.size")
	AttrSnoozed      = attribute.Key("ordo.job.snoozed")
	AttrJobIndex     = attribute.Key("ordo.batch.index")
)

// Config configures the middleware. The zero value uses the global
// TracerProvider and the W3C trace context.
type Config struct {
	// TracerProvider makes the tracer; default otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// Propagator writes a span's context into a job's metadata and reads
	// it back; default propagation.TraceContext{} (not the global one,
	// which is a no-op until an application sets it, and would silently
	// cut every job's trace from its insert's).
	Propagator propagation.TextMapPropagator
}

// Middleware makes the spans; add Insert to worker.Config.InsertMiddleware
// and Work to worker.Config.WorkMiddleware.
type Middleware struct {
	tracer     trace.Tracer
	propagator propagation.TextMapPropagator
}

// New returns the middleware for cfg.
func New(cfg Config) *Middleware {
	tp := cfg.TracerProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	prop := cfg.Propagator
	if prop == nil {
		prop = propagation.TraceContext{}
	}
	return &Middleware{tracer: tp.Tracer(ScopeName), propagator: prop}
}

// Insert returns the insert middleware: a producer span around the insert
// of a batch, whose context each job carries in its metadata.
func (m *Middleware) Insert() worker.InsertMiddleware {
	return func(ctx context.Context, jobs []queue.Job, next func(context.Context, []queue.Job) ([]queue.EnqueueResult, error)) ([]queue.EnqueueResult, error) {
		ctx, span := m.tracer.Start(ctx, SpanInsert, trace.WithSpanKind(trace.SpanKindProducer),
			trace.WithAttributes(AttrBatchSize.Int(len(jobs))))
		defer span.End()
		if tenant, ok := same(jobs, func(j queue.Job) string { return j.TenantID }); ok {
			span.SetAttributes(AttrTenant.String(tenant))
		}
		if kind, ok := same(jobs, func(j queue.Job) string { return j.Kind }); ok {
			span.SetAttributes(AttrKind.String(kind))
		}
		carried := make([]queue.Job, len(jobs))
		for i, j := range jobs {
			md := maps.Clone(j.Metadata) // the caller's map stays theirs
			if md == nil {
				md = map[string]string{}
			}
			m.propagator.Inject(ctx, propagation.MapCarrier(md))
			// The caller's own metadata is encoded only when the trace
			// context does not fit (rare): the insert path pays for one
			// check here, and the queue's own when it prepares the job.
			_, withTrace := driver.EncodeMetadata(md)
			if withTrace == nil {
				j.Metadata = md
			} else if _, own := driver.EncodeMetadata(j.Metadata); own != nil {
				j.Metadata = md // refused anyway: the insert fails naming the caller's key
			} else {
				// The caller's metadata leaves no room for the trace
				// context: the job goes without it rather than failing.
				span.AddEvent("ordo.trace_context_not_carried", trace.WithAttributes(
					AttrJobIndex.Int(i), attribute.String("reason", withTrace.Error())))
			}
			carried[i] = j
		}
		res, err := next(ctx, carried)
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
			return res, err
		}
		ids, thlcs := make([]string, len(res)), make([]string, len(res))
		for i, r := range res {
			ids[i], thlcs[i] = r.JobID.String(), r.THLC
		}
		if len(res) == 1 {
			span.SetAttributes(AttrJobID.String(ids[0]), AttrTHLC.String(thlcs[0]), AttrDeduplicated.Bool(res[0].Deduplicated))
		} else {
			span.SetAttributes(AttrJobID.StringSlice(ids), AttrTHLC.StringSlice(thlcs))
		}
		return res, nil
	}
}

// Work returns the work middleware: a consumer span around each run of a
// job, the child of its insert's span when the job carries one.
func (m *Middleware) Work() worker.WorkMiddleware {
	return func(ctx context.Context, l *queue.Lease, next func(context.Context) error) error {
		if len(l.Metadata) > 0 {
			ctx = m.propagator.Extract(ctx, propagation.MapCarrier(l.Metadata))
		}
		ctx, span := m.tracer.Start(ctx, SpanWork, trace.WithSpanKind(trace.SpanKindConsumer), trace.WithAttributes(
			AttrTenant.String(l.TenantID), AttrKind.String(l.Kind), AttrJobID.String(l.JobID.String()),
			AttrTHLC.String(l.THLC), AttrPartition.String(l.PartitionKey),
			AttrAttempt.Int(l.Attempt), AttrMaxAttempts.Int(l.MaxAttempts)))
		defer span.End()
		err := next(ctx)
		if _, snoozed := worker.IsSnooze(err); snoozed {
			span.SetAttributes(AttrSnoozed.Bool(true))
		} else if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		return err
	}
}

// same is the value f gives every job, if they all give the same one.
func same(jobs []queue.Job, f func(queue.Job) string) (string, bool) {
	if len(jobs) == 0 {
		return "", false
	}
	v := f(jobs[0])
	for _, j := range jobs[1:] {
		if f(j) != v {
			return "", false
		}
	}
	return v, true
}
