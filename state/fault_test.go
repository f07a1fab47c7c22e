package state

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
)

// faultyFile fails writes or fsyncs of one file once armed, the way a full
// disk does. A failed write may still have written part of the data.
type faultyFile struct {
	File
	armed     *bool
	failWrite error
	partial   bool // write half the data before failing
	short     bool // write half the data and report no error
	failSync  error
}

func (f *faultyFile) Write(p []byte) (int, error) {
	if *f.armed && f.short {
		return f.File.Write(p[:len(p)/2])
	}
	if *f.armed && f.failWrite != nil {
		if f.partial {
			n, _ := f.File.Write(p[:len(p)/2])
			return n, f.failWrite
		}
		return 0, f.failWrite
	}
	return f.File.Write(p)
}

func (f *faultyFile) Sync() error {
	if *f.armed && f.failSync != nil {
		return f.failSync
	}
	return f.File.Sync()
}

// TestWriteFailuresAreSticky proves that a failed write or fsync makes every
// later change fail with the same error, naming the file and the operation,
// and that the journal reopens cleanly afterwards.
func TestWriteFailuresAreSticky(t *testing.T) {
	tests := []struct {
		name     string
		fault    faultyFile
		wantText string
		cause    error
		// whether the failed record may be on disk after reopening
		survives bool
	}{
		{"write fails", faultyFile{failWrite: syscall.ENOSPC}, "state: write %s: no space left on device", syscall.ENOSPC, false},
		{"write fails halfway", faultyFile{failWrite: syscall.ENOSPC, partial: true}, "state: write %s: no space left on device", syscall.ENOSPC, false},
		{"short write", faultyFile{short: true}, "state: write %s: short write", io.ErrShortWrite, false},
		{"fsync fails", faultyFile{failSync: syscall.EIO}, "state: fsync %s: input/output error", syscall.EIO, true},
		{"fsync finds the disk full", faultyFile{failSync: &os.PathError{Op: "sync", Path: "x", Err: syscall.ENOSPC}}, "state: fsync %s: no space left on device", syscall.ENOSPC, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := journalPath(t)
			armed := false
			j, err := OpenWithOptions(path, Options{WrapFile: func(f *os.File) File {
				if f.Name() != path {
					return f
				}
				ff := tt.fault
				ff.File, ff.armed = f, &armed
				return &ff
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			id := begin(t, j, message(1))
			want := entries(t, j)

			armed = true
			_, err = j.BeginAppend(message(2))
			if err == nil {
				t.Fatal("BeginAppend succeeded on a failing disk")
			}
			if got, want := err.Error(), strings.Replace(tt.wantText, "%s", path, 1); got != want {
				t.Fatalf("error = %q, want %q", got, want)
			}
			if !errors.Is(err, tt.cause) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tt.cause)
			}
			armed = false // even once the disk has room, the journal stays unusable
			for name, later := range map[string]error{
				"BeginAppend":  func() error { _, err := j.BeginAppend(message(3)); return err }(),
				"MarkAppended": j.MarkAppended(id, 1, 1),
				"MarkRefused":  j.MarkRefused(id, "x"),
				"MarkDeleted":  j.MarkDeleted([]uint64{id}),
			} {
				if later != err {
					t.Errorf("%s after the failure = %v, want the sticky %v", name, later, err)
				}
			}
			got := entries(t, j)
			if tt.survives && len(got) == 2 {
				// Written but not known durable: it may or may not be
				// there after a reopen either.
				got = got[:1]
			}
			sameEntries(t, "entries after the failure", got, want)
			if err := j.Close(); err != nil {
				t.Fatal(err)
			}

			j = mustOpen(t, path)
			defer j.Close()
			got = entries(t, j)
			if tt.survives && len(got) == 2 {
				got = got[:1] // the unacknowledged record may be there
			}
			sameEntries(t, "entries after reopen", got, want)
			begin(t, j, message(4))
		})
	}
}

// TestCompactionFailure proves that a compaction that cannot be written
// fails Open with the temporary file's name, leaves the journal as it was,
// and leaves no temporary file behind.
func TestCompactionFailure(t *testing.T) {
	for _, op := range []string{"write", "fsync", "directory fsync"} {
		t.Run(op, func(t *testing.T) {
			path := journalPath(t)
			j := mustOpen(t, path)
			for i := range 3 {
				id := begin(t, j, message(i))
				if err := j.MarkAppended(id, 1, 1); err != nil {
					t.Fatal(err)
				}
				if err := j.MarkDeleted([]uint64{id}); err != nil {
					t.Fatal(err)
				}
			}
			want := entries(t, j)
			j.Close()
			before, _ := os.ReadFile(path)

			armed := true
			var tmpName string
			_, err := OpenWithOptions(path, Options{WrapFile: func(f *os.File) File {
				switch {
				case strings.Contains(f.Name(), compactSuffix) && op != "directory fsync":
					tmpName = f.Name()
					ff := &faultyFile{File: f, armed: &armed}
					if op == "write" {
						ff.failWrite = syscall.ENOSPC
					} else {
						ff.failSync = syscall.ENOSPC
					}
					return ff
				case op == "directory fsync" && f.Name() != path:
					return &faultyFile{File: f, armed: &armed, failSync: syscall.EIO}
				}
				return f
			}})
			if err == nil {
				t.Fatal("Open succeeded although compaction failed")
			}
			if op != "directory fsync" && !strings.HasPrefix(err.Error(), "state: "+op+" "+tmpName+": ") {
				t.Fatalf("error = %q, want it to name %s and %s", err, op, tmpName)
			}
			if op == "directory fsync" && !strings.HasPrefix(err.Error(), "state: fsync ") {
				t.Fatalf("error = %q, want an fsync error", err)
			}
			if op != "directory fsync" {
				if after, _ := os.ReadFile(path); string(after) != string(before) {
					t.Fatal("failed compaction changed the journal")
				}
			}
			if tmpName != "" {
				if _, err := os.Stat(tmpName); !errors.Is(err, os.ErrNotExist) {
					t.Fatalf("temporary file %s left behind", tmpName)
				}
			}
			j = mustOpen(t, path) // the lock was released, and compaction now works
			defer j.Close()
			sameEntries(t, "after compaction", entries(t, j), want)
			if lines := countLines(t, path); lines != 4 {
				t.Fatalf("journal has %d lines after compaction, want 4", lines)
			}
		})
	}
}

// syncLog records the fsyncs of the files it wraps, by name.
type syncLog struct {
	File
	name string
	log  *[]string
}

func (f syncLog) Sync() error {
	*f.log = append(*f.log, f.name)
	return f.File.Sync()
}

// TestNewJournalSyncsWithFirstRecord: opening a new journal fsyncs
// nothing of its own; the first record's fsync makes the file, then its
// name in the directory, durable before the record is acknowledged, and
// later records fsync the file alone. A failing directory fsync fails the
// record.
func TestNewJournalSyncsWithFirstRecord(t *testing.T) {
	path := journalPath(t)
	dir := filepath.Dir(path)
	var log []string
	j, err := OpenWithOptions(path, Options{WrapFile: func(f *os.File) File { return syncLog{f, f.Name(), &log} }})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	// The directory itself was created by journalPath's caller or by
	// makeDir: only what follows its creation counts.
	log = log[:0]
	j.Close()
	if len(log) != 0 {
		t.Fatalf("opening and closing an empty journal fsync'd %v", log)
	}
	j, err = OpenWithOptions(path, Options{WrapFile: func(f *os.File) File { return syncLog{f, f.Name(), &log} }})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	begin(t, j, message(1))
	if want := []string{path, dir}; !slices.Equal(log, want) {
		t.Fatalf("the first record fsync'd %v, want %v", log, want)
	}
	log = log[:0]
	begin(t, j, message(2))
	if want := []string{path}; !slices.Equal(log, want) {
		t.Fatalf("the second record fsync'd %v, want %v", log, want)
	}

	// A directory that cannot be fsync'd fails the first record.
	path2 := filepath.Join(dir, "other.journal")
	armed := true
	j2, err := OpenWithOptions(path2, Options{WrapFile: func(f *os.File) File {
		if f.Name() == dir {
			return &faultyFile{File: f, armed: &armed, failSync: syscall.EIO}
		}
		return f
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer j2.Close()
	if _, err := j2.BeginAppend(message(1)); !errors.Is(err, syscall.EIO) {
		t.Fatalf("first record with a failing directory fsync: %v, want EIO", err)
	}
}
