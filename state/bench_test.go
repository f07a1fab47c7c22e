package state

import (
	"os"
	"runtime"
	"testing"
)

// BenchmarkMarkAppended measures recording one message: BeginAppend then
// MarkAppended, each with a real fsync. It reports the journal bytes per
// message as B/msg.
func BenchmarkMarkAppended(b *testing.B) {
	path := journalPath(b)
	j := mustOpen(b, path)
	defer j.Close()
	e := message(1)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		id, err := j.BeginAppend(e)
		if err != nil {
			b.Fatal(err)
		}
		if err := j.MarkAppended(id, 1700000000, uint32(id)); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(fi.Size()-int64(len(header)))/float64(b.N), "B/msg")
}

// BenchmarkIndexMemory measures the heap a journal of 20,000 messages
// holds per entry once opened. The index is on disk, so it should be close
// to nothing; the time per op is that of opening (replaying) the journal.
func BenchmarkIndexMemory(b *testing.B) {
	const n = 20000
	path := journalPath(b)
	j := mustOpen(b, path)
	es := make([]Entry, n)
	for i := range es {
		es[i] = message(i)
	}
	if _, err := j.AddBaseline(es); err != nil {
		b.Fatal(err)
	}
	j.Close()
	var perEntry float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		j := mustOpen(b, path)
		runtime.GC()
		runtime.ReadMemStats(&after)
		if j.Len() != n {
			b.Fatalf("reopened journal has %d entries, want %d", j.Len(), n)
		}
		perEntry = float64(after.HeapAlloc-before.HeapAlloc) / n
		j.Close()
	}
	b.ReportMetric(perEntry, "B/entry")
}

// BenchmarkRecordParallel is BenchmarkMarkAppended with 16 goroutines
// recording at once, as pop2imap's appenders do: BeginAppend, then
// MarkAppendedLater, whose record rides on a later fsync. Group commit
// lets the goroutines share fsyncs, so the time per message should fall
// well below one fsync.
func BenchmarkRecordParallel(b *testing.B) {
	path := journalPath(b)
	j := mustOpen(b, path)
	defer j.Close()
	b.SetParallelism(8)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		e := message(1)
		for pb.Next() {
			id, err := j.BeginAppend(e)
			if err != nil {
				b.Error(err)
				return
			}
			if err := j.MarkAppendedLater(id, 1700000000, uint32(id)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
