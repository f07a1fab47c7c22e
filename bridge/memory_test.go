package bridge

import (
	"encoding/binary"
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/pop2imap/pop2imap/state"
)

// syntheticListing returns a listing of n messages with Dovecot-style
// 16-character UIDLs, built without a server.
func syntheticListing(n int) *listing {
	l := &listing{}
	for i := range n {
		uidl := fmt.Sprintf("%08x%08x", i, 1700000000)
		l.recs = append(l.recs, listRec{size: 4000, num: uint32(i + 1), uoff: uint32(len(l.uidls))})
		l.uidls = binary.AppendUvarint(l.uidls, uint64(len(uidl)))
		l.uidls = append(l.uidls, uidl...)
	}
	return l
}

// BenchmarkPlanMemory measures the heap a session holds per listed
// message once it has planned: the listing and the plan, for a maildrop of
// 100,000 messages of which the journal shows half as copied (and kept on
// the server). The journal itself holds nothing per entry in memory
// (state's BenchmarkIndexMemory).
func BenchmarkPlanMemory(b *testing.B) {
	const n = 100000
	path := filepath.Join(b.TempDir(), "journal")
	j, err := state.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	ref := syntheticListing(n)
	es := make([]state.Entry, 0, 1000)
	for i := 0; i < n; i += 2 {
		t := ref.at(i)
		es = append(es, state.Entry{UIDL: t.uidl, ListSize: t.size})
		if len(es) == cap(es) {
			if _, err := j.AddBaseline(es); err != nil {
				b.Fatal(err)
			}
			es = es[:0]
		}
	}
	m := &Migrator{Journal: j}
	var perMsg float64
	b.ResetTimer()
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		l := syntheticListing(n)
		pl, err := m.plan(l)
		if err != nil {
			b.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if pl.done != n/2 || len(pl.fresh) != n/2 {
			b.Fatalf("plan: %d done, %d fresh; want %d each", pl.done, len(pl.fresh), n/2)
		}
		perMsg = float64(after.HeapAlloc-before.HeapAlloc) / n
		runtime.KeepAlive(l)
	}
	b.ReportMetric(perMsg, "B/msg")
}
