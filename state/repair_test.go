package state

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// threeEntries writes a journal of three entries, the first appended, and
// returns its lines (the header first).
func threeEntries(t *testing.T, path string) [][]byte {
	t.Helper()
	j := mustOpen(t, path)
	id := begin(t, j, message(1))
	if err := j.MarkAppended(id, 7, 1); err != nil {
		t.Fatal(err)
	}
	begin(t, j, message(2))
	begin(t, j, message(3))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := bytes.SplitAfter(data, []byte("\n"))
	return lines[:len(lines)-1]
}

// TestSalvageDamagedRecord proves that a record failing its checksum with
// more records after it is never silent and never fatal: Open keeps the
// entries before it, saves the whole damaged file beside the journal, cuts
// the journal there, and says so through Repaired.
func TestSalvageDamagedRecord(t *testing.T) {
	for _, tt := range []struct {
		name string
		line int // the damaged line; lines[0] is the header
		keep int // entries that survive
	}{
		{"in the middle", 3, 1},
		{"first record", 1, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := journalPath(t)
			lines := threeEntries(t, path)
			lines[tt.line][20] ^= 1
			damaged := bytes.Join(lines, nil)
			if err := os.WriteFile(path, damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			off := int64(len(bytes.Join(lines[:tt.line], nil)))

			j, err := Open(path)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer j.Close()
			r := j.Repaired()
			if r == nil {
				t.Fatal("Repaired() = nil after cutting a damaged record")
			}
			if r.Torn || r.Offset != off || r.Dropped != int64(len(damaged))-off || r.Path != path {
				t.Fatalf("Repair = %+v, want offset %d, dropped %d, not torn", r, off, int64(len(damaged))-off)
			}
			saved, err := os.ReadFile(r.SavedAs)
			if err != nil || !bytes.Equal(saved, damaged) {
				t.Fatalf("saved copy %s: %v; equal to the damaged file: %v", r.SavedAs, err, bytes.Equal(saved, damaged))
			}
			if fi, _ := os.Stat(path); fi.Size() != off {
				t.Fatalf("journal is %d bytes after the repair, want %d", fi.Size(), off)
			}
			if j.Len() != tt.keep {
				t.Fatalf("%d entries kept, want %d", j.Len(), tt.keep)
			}
			for _, want := range []string{path, "byte", r.SavedAs, "found in the folder"} {
				if !strings.Contains(r.String(), want) {
					t.Errorf("%q does not say %q", r.String(), want)
				}
			}
			// The journal goes on working after the cut.
			id := begin(t, j, message(4))
			if err := j.MarkAppended(id, 7, 9); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestTornTailIsReported proves that a journal cut in the middle of a
// record (truncate -s to half its size) is repaired and reported, not
// repaired silently.
func TestTornTailIsReported(t *testing.T) {
	path := journalPath(t)
	lines := threeEntries(t, path)
	whole := bytes.Join(lines, nil)
	// Cut inside the last record.
	cut := int64(len(whole)) - int64(len(lines[len(lines)-1]))/2
	if err := os.Truncate(path, cut); err != nil {
		t.Fatal(err)
	}
	j, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	r := j.Repaired()
	wantOff := int64(len(whole)) - int64(len(lines[len(lines)-1]))
	if r == nil || !r.Torn || r.Offset != wantOff || r.Dropped != cut-wantOff || r.SavedAs != "" {
		t.Fatalf("Repair = %+v, want a torn tail at %d dropping %d bytes", r, wantOff, cut-wantOff)
	}
	if j.Len() != 2 {
		t.Fatalf("%d entries, want 2", j.Len())
	}

	// A journal that is whole reports nothing.
	j.Close()
	j2, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if r := j2.Repaired(); r != nil {
		t.Fatalf("Repaired() = %+v on a whole journal", r)
	}
}

// TestAdopt proves that an adopted entry is created at step Appended with
// its UID, survives a reopen, and may then be marked deleted.
func TestAdopt(t *testing.T) {
	path := journalPath(t)
	j := mustOpen(t, path)
	id, err := j.Adopt(message(1), 42, 17)
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = mustOpen(t, path)
	defer j.Close()
	es, err := j.ByUIDL(message(1).UIDL)
	if err != nil || len(es) != 1 {
		t.Fatalf("ByUIDL: %v, %d entries", err, len(es))
	}
	e := es[0]
	if e.ID != id || e.Step != Appended || e.UIDValidity != 42 || e.UID != 17 || e.SHA256 != message(1).SHA256 {
		t.Fatalf("adopted entry = %+v", e)
	}
	if err := j.MarkDeleted([]uint64{id}); err != nil {
		t.Fatalf("MarkDeleted after Adopt: %v", err)
	}
}
