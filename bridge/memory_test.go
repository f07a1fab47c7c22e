package bridge

import (
	"encoding/binary"
	"fmt"
	"os"
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
		pl, err := m.plan(l, 0)
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

// syncCounter counts the fsyncs of a journal and skips them, so that a test
// can write thousands of records quickly.
type syncCounter struct {
	*os.File
	n *int
}

func (f syncCounter) Sync() error { *f.n++; return nil }

func openCountingJournal(t *testing.T) (*state.Journal, *int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "journal")
	syncs := new(int)
	j, err := state.OpenWithOptions(path, state.Options{WrapFile: func(f *os.File) state.File {
		if f.Name() != path {
			return f
		}
		return syncCounter{f, syncs}
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j, syncs
}

// TestRecordsInBatches checks that a large baseline and a large deletion
// are recorded in batches, each with one fsync, and that every message is
// recorded.
func TestRecordsInBatches(t *testing.T) {
	const n = 2*baselineBatch + 100
	j, syncs := openCountingJournal(t)
	var events int
	m := &Migrator{Journal: j, Stats: &Stats{}, OnEvent: func(Event) { events++ }}
	l := syntheticListing(n)

	idx := make([]int32, n)
	for i := range idx {
		idx[i] = int32(i)
	}
	*syncs = 0
	if err := m.baseline(l, idx); err != nil {
		t.Fatal(err)
	}
	if *syncs != 3 || m.Stats.Baselined.Load() != n || j.Len() != n {
		t.Fatalf("baseline of %d messages: %d fsyncs, %d counted, %d entries; want 3, %d, %d",
			n, *syncs, m.Stats.Baselined.Load(), j.Len(), n, n)
	}

	// Appended entries to delete, and every tenth message with no entry
	// to record (one already recorded deleted).
	var deleted []delMsg
	for i := range n {
		d := delMsg{num: i + 1}
		if i%10 != 0 {
			id, err := j.BeginAppend(state.Entry{UIDL: l.at(i).uidl, ListSize: 1})
			if err != nil {
				t.Fatal(err)
			}
			if err := j.MarkAppendedLater(id, 1, uint32(i+1)); err != nil {
				t.Fatal(err)
			}
			d.id = id
		}
		deleted = append(deleted, d)
	}
	*syncs, events = 0, 0
	if err := m.recordDeleted(deleted); err != nil {
		t.Fatal(err)
	}
	withID := n - (n+9)/10
	if want := (withID + markDeletedBatch - 1) / markDeletedBatch; *syncs != want {
		t.Errorf("deleting %d: %d fsyncs, want %d", withID, *syncs, want)
	}
	if m.Stats.Deleted.Load() != int64(withID) || events != n {
		t.Errorf("deleted counted %d, events %d; want %d, %d", m.Stats.Deleted.Load(), events, withID, n)
	}
	err := j.Each(func(e state.Entry) error {
		if e.Step == state.Appended {
			return fmt.Errorf("entry %d (%s) is still appended", e.ID, e.UIDL)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
