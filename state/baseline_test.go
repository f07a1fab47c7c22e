package state

import (
	"path/filepath"
	"testing"
)

// TestAddBaseline: baseline entries survive a reopen at step Baseline, and
// no step may follow it.
func TestAddBaseline(t *testing.T) {
	path := filepath.Join(t.TempDir(), "j")
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ids, err := j.AddBaseline([]Entry{{UIDL: "a", ListSize: 10}, {UIDL: "b", ListSize: 20}})
	if err != nil || len(ids) != 2 || ids[0] == ids[1] {
		t.Fatalf("AddBaseline = %v, %v", ids, err)
	}
	if err := j.MarkDeleted(ids[:1]); err == nil {
		t.Error("MarkDeleted accepted a baseline entry")
	}
	id, err := j.BeginAppend(Entry{UIDL: "c"})
	if err != nil || id <= ids[1] {
		t.Fatalf("BeginAppend after baseline = %d, %v", id, err)
	}
	j.Close()
	j, err = Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	got := byUIDL(t, j, "b")
	if len(got) != 1 || got[0].Step != Baseline || got[0].ListSize != 20 {
		t.Errorf("after reopen: %+v", got)
	}
}
