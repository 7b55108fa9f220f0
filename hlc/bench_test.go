package hlc

import (
	"context"
	"testing"
	"time"
)

// benchClock runs on a fixed fake wall clock so the benchmarks measure the
// HLC itself; BenchmarkNowSystemClock adds the cost of reading real time,
// which on a VM with kvm-clock alone is 30-80 ns.
func benchClock(b *testing.B, wall WallClock) *Clock {
	c, err := New(context.Background(), Config{Node: "scheduler-east-1", Wall: wall})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func BenchmarkNow(b *testing.B) {
	c := benchClock(b, NewManualClock(1704067200000))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Now(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNowSystemClock(b *testing.B) {
	c := benchClock(b, SystemClock{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.Now(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWallClockRead is the floor under BenchmarkNowSystemClock.
func BenchmarkWallClockRead(b *testing.B) {
	var sink int64
	for b.Loop() {
		sink += time.Now().UnixMilli()
	}
	_ = sink
}

// BenchmarkNowParallel measures contention on one clock shared by all
// goroutines, as in a busy enqueue path.
func BenchmarkNowParallel(b *testing.B) {
	c := benchClock(b, SystemClock{})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Now(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkReceive(b *testing.B) {
	c := benchClock(b, NewManualClock(1704067200000))
	remote, _ := c.Now()
	remote.Node = "scheduler-west-2"
	b.ReportAllocs()
	for b.Loop() {
		ts, err := c.Receive(remote)
		if err != nil {
			b.Fatal(err)
		}
		remote.Physical, remote.Logical = ts.Physical, ts.Logical
	}
}

func BenchmarkAppendText(b *testing.B) {
	ts := Timestamp{1704067200000, 42, "scheduler-east-1"}
	var buf [MaxTextLen]byte
	b.ReportAllocs()
	for b.Loop() {
		_ = ts.AppendText(buf[:0])
	}
}

func BenchmarkParse(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Parse("1704067200000-000042-scheduler-east-1"); err != nil {
			b.Fatal(err)
		}
	}
}
