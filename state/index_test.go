package state

import (
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// TestIndexManyEntries fills the index past several growths of its hash
// table, with UIDLs that recur, and checks every lookup before and after
// reopening.
func TestIndexManyEntries(t *testing.T) {
	const n, distinct = 5000, 3700
	path := journalPath(t)
	j := mustOpen(t, path)
	want := map[string][]uint64{}
	// The first entry changes once its row has long left the index's tail.
	first := message(distinct)
	firstID := begin(t, j, first)
	want[first.UIDL] = []uint64{firstID}
	for start := 0; start < n; start += 1000 {
		es := make([]Entry, 1000)
		for k := range es {
			es[k] = message((start + k) % distinct)
		}
		ids, err := j.AddBaseline(es)
		if err != nil {
			t.Fatal(err)
		}
		for k, id := range ids {
			want[es[k].UIDL] = append(want[es[k].UIDL], id)
		}
	}
	if err := j.MarkAppended(firstID, 9, 1); err != nil {
		t.Fatal(err)
	}
	if err := j.MarkDeleted([]uint64{firstID}); err != nil {
		t.Fatal(err)
	}
	// Entries that move through every step, among the baseline ones.
	steps := map[uint64]Step{firstID: Deleted}
	for k := range 6 {
		e := message(k * 7)
		id := begin(t, j, e)
		want[e.UIDL] = append(want[e.UIDL], id)
		switch k % 3 {
		case 0:
			steps[id] = Appending
		case 1:
			if err := j.MarkAppended(id, 9, uint32(k)); err != nil {
				t.Fatal(err)
			}
			if err := j.MarkDeleted([]uint64{id}); err != nil {
				t.Fatal(err)
			}
			steps[id] = Deleted
		case 2:
			if err := j.MarkRefused(id, "no"); err != nil {
				t.Fatal(err)
			}
			steps[id] = Refused
		}
	}

	check := func(what string, j *Journal) {
		t.Helper()
		if got := j.Len(); got != n+7 {
			t.Fatalf("%s: Len = %d, want %d", what, got, n+7)
		}
		for uidl, ids := range want {
			es := byUIDL(t, j, uidl)
			got := make([]uint64, len(es))
			for k, e := range es {
				got[k] = e.ID
				if e.UIDL != uidl {
					t.Fatalf("%s: ByUIDL(%q) returned an entry for %q", what, uidl, e.UIDL)
				}
				if s, ok := steps[e.ID]; ok && e.Step != s {
					t.Fatalf("%s: entry %d is %s, want %s", what, e.ID, e.Step, s)
				}
			}
			if !slices.Equal(got, ids) {
				t.Fatalf("%s: ByUIDL(%q) gave IDs %v, want %v", what, uidl, got, ids)
			}
		}
		if es := byUIDL(t, j, "not there"); len(es) != 0 {
			t.Fatalf("%s: ByUIDL of an unknown UIDL = %+v", what, es)
		}
	}
	check("open", j)
	before := entries(t, j)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j = mustOpen(t, path)
	defer j.Close()
	check("reopened", j)
	sameEntries(t, "after reopen", entries(t, j), before)
}

// TestIndexLeavesNoFiles checks that the index's files never show up in the
// journal's directory, so nothing is left behind after a crash.
func TestIndexLeavesNoFiles(t *testing.T) {
	path := journalPath(t)
	j := mustOpen(t, path)
	begin(t, j, message(1))
	names := func() []string {
		des, err := os.ReadDir(filepath.Dir(path))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, de := range des {
			out = append(out, de.Name())
		}
		return out
	}
	want := []string{"test.journal", "test.journal.lock"}
	if got := names(); !slices.Equal(got, want) {
		t.Errorf("while open, the directory holds %v, want %v", got, want)
	}
	j.Close()
	if got := names(); !slices.Equal(got, want) {
		t.Errorf("after Close, the directory holds %v, want %v", got, want)
	}
	if _, err := j.Entries(); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Errorf("Entries after Close = %v, want an error saying the journal is closed", err)
	}
}

// TestIndexGappedIDs opens a journal whose entry IDs skip numbers, which
// pop2imap never writes but a hand-edited file may hold.
func TestIndexGappedIDs(t *testing.T) {
	path := journalPath(t)
	j := mustOpen(t, path) // creates the directory and the header
	j.Close()
	var b []byte
	for _, id := range []uint64{1, 2, 5, 6, 40} {
		e := message(int(id))
		e.ID, e.Step, e.Updated = id, Appending, e.InternalDate
		b = appendRecord(b, &e, true)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	f.Close()

	j = mustOpen(t, path)
	defer j.Close()
	for _, id := range []uint64{1, 5, 40} {
		if err := j.MarkAppended(id, 1, uint32(id)); err != nil {
			t.Fatalf("MarkAppended(%d): %v", id, err)
		}
	}
	for _, id := range []uint64{3, 4, 7, 39, 41} {
		if err := j.MarkAppended(id, 1, 1); err == nil || !strings.Contains(err.Error(), "no entry") {
			t.Errorf("MarkAppended(%d) = %v, want a missing entry", id, err)
		}
	}
	id := begin(t, j, message(41))
	if id != 41 {
		t.Errorf("the next entry got ID %d, want 41", id)
	}
	for _, id := range []uint64{1, 2, 5, 6, 40, 41} {
		es := byUIDL(t, j, message(int(id)).UIDL)
		if len(es) != 1 || es[0].ID != id {
			t.Fatalf("ByUIDL of entry %d = %+v", id, es)
		}
		appended := id == 1 || id == 5 || id == 40
		if got := es[0].Step == Appended; got != appended {
			t.Errorf("entry %d is %s", id, es[0].Step)
		}
	}
}

// TestSmallIndexInMemory: the index of a small journal lives in memory,
// so opening one creates no file beside the journal and its lock; it
// moves to files once it outgrows the smallest table, and lookups work on
// both sides of the move.
func TestSmallIndexInMemory(t *testing.T) {
	j := mustOpen(t, journalPath(t))
	defer j.Close()
	var uidls []string
	add := func(n int) {
		for range n {
			e := message(len(uidls))
			begin(t, j, e)
			uidls = append(uidls, e.UIDL)
		}
	}
	add(3)
	if _, ok := j.idx.slots.(*memStore); !ok || j.idx.rows != nil {
		t.Fatalf("3 entries: slots in %T, rows %v; want memory and no rows file", j.idx.slots, j.idx.rows)
	}
	add(minSlots/2 - 3)
	if _, ok := j.idx.slots.(*memStore); !ok {
		t.Fatalf("%d entries: slots in %T, want memory", len(uidls), j.idx.slots)
	}
	add(tailRows)
	if _, ok := j.idx.slots.(*os.File); !ok || j.idx.rows == nil {
		t.Fatalf("%d entries: slots in %T, rows %v; want both in files", len(uidls), j.idx.slots, j.idx.rows)
	}
	for k, u := range uidls {
		if es := byUIDL(t, j, u); len(es) != 1 || es[0].ID != uint64(k+1) {
			t.Fatalf("ByUIDL(%q) = %+v, want entry %d alone", u, es, k+1)
		}
	}
}

// TestMemStore: the in-memory store reads back what was written, grows
// with zeros, and reads zeros where it was truncated and grown again.
func TestMemStore(t *testing.T) {
	m := &memStore{}
	if _, err := m.WriteAt([]byte("abc"), 4); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 8)
	n, err := m.ReadAt(b, 0)
	if n != 7 || err != io.EOF || string(b[:n]) != "\x00\x00\x00\x00abc" {
		t.Fatalf("ReadAt = %d %v %q", n, err, b[:n])
	}
	m.Truncate(5)
	m.Truncate(7)
	if n, err := m.ReadAt(b[:7], 0); n != 7 || err != nil || string(b[:7]) != "\x00\x00\x00\x00a\x00\x00" {
		t.Fatalf("after truncating to 5 and growing to 7: %d %v %q", n, err, b[:7])
	}
	if _, err := m.ReadAt(b[:1], 7); err != io.EOF {
		t.Fatalf("ReadAt past the end: %v, want io.EOF", err)
	}
}
