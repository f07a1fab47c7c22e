package state

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// gatedFile holds the first fsync until a number of writes have happened,
// so a test can make callers overlap without relying on timing.
type gatedFile struct {
	*os.File
	writes, syncs *atomic.Int32
	armed         *atomic.Bool
	want          int32
}

func (g *gatedFile) Write(b []byte) (int, error) {
	g.writes.Add(1)
	return g.File.Write(b)
}

func (g *gatedFile) Sync() error {
	if g.armed.Load() && g.syncs.Load() == 0 {
		deadline := time.Now().Add(10 * time.Second) // a safety net, not a measurement
		for g.writes.Load() < g.want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
	}
	if g.armed.Load() {
		g.syncs.Add(1)
	}
	return g.File.Sync()
}

// openGated opens a journal whose first fsync, once armed, waits for n
// writes.
func openGated(t *testing.T, path string, n int32) (j *Journal, writes, syncs *atomic.Int32, armed *atomic.Bool) {
	t.Helper()
	writes, syncs, armed = new(atomic.Int32), new(atomic.Int32), new(atomic.Bool)
	j, err := OpenWithOptions(path, Options{WrapFile: func(f *os.File) File {
		if f.Name() != path {
			return f
		}
		return &gatedFile{File: f, writes: writes, syncs: syncs, armed: armed, want: n}
	}})
	if err != nil {
		t.Fatal(err)
	}
	return j, writes, syncs, armed
}

// TestGroupCommit: steps recorded concurrently share fsyncs, and all of them
// are on disk afterwards.
func TestGroupCommit(t *testing.T) {
	const n = 8
	path := filepath.Join(t.TempDir(), "j")
	j, writes, syncs, armed := openGated(t, path, n)
	var ids []uint64
	for i := 0; i < n; i++ {
		id, err := j.BeginAppend(Entry{UIDL: "u", ListSize: int64(i)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	writes.Store(0)
	armed.Store(true)
	var wg sync.WaitGroup
	for _, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := j.MarkAppended(id, 7, uint32(id)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	// The first fsync covers only the record written before it began; the
	// other seven are written while it is held, and one more fsync must
	// cover them all. Without group commit there would be eight.
	if got := syncs.Load(); got != 2 {
		t.Errorf("%d fsyncs for %d concurrent records, want 2", got, n)
	}
	j.Close()
	j = mustOpen(t, path)
	defer j.Close()
	for _, e := range entries(t, j) {
		if e.Step != Appended || e.UID != uint32(e.ID) {
			t.Errorf("entry %d after reopen: %v uid %d", e.ID, e.Step, e.UID)
		}
	}
}

// TestGroupCommitBeginAppend: entries created concurrently share fsyncs
// too, get distinct IDs in the order their records were written, and are
// all there after a reopen.
func TestGroupCommitBeginAppend(t *testing.T) {
	const n = 8
	path := filepath.Join(t.TempDir(), "j")
	j, writes, syncs, armed := openGated(t, path, n)
	writes.Store(0)
	armed.Store(true)
	var wg sync.WaitGroup
	got := make([]uint64, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id, err := j.BeginAppend(message(i))
			if err != nil {
				t.Error(err)
			}
			got[i] = id
		}()
	}
	wg.Wait()
	// As in TestGroupCommit: one fsync for the first record, one for the
	// seven written while it was held. One at a time would be eight.
	if s := syncs.Load(); s != 2 {
		t.Errorf("%d fsyncs for %d concurrent BeginAppends, want 2", s, n)
	}
	j.Close()
	j = mustOpen(t, path)
	defer j.Close()
	es := entries(t, j)
	if len(es) != n {
		t.Fatalf("%d entries after reopen, want %d", len(es), n)
	}
	for k, e := range es {
		if e.ID != uint64(k+1) {
			t.Errorf("entry %d has ID %d", k, e.ID)
		}
		i := slices.Index(got, e.ID)
		if i < 0 || e.UIDL != message(i).UIDL {
			t.Errorf("entry %d (%s) was not returned by the BeginAppend of that message", e.ID, e.UIDL)
		}
	}
}
