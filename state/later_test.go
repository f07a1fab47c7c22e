package state

import (
	"errors"
	"syscall"
	"testing"
)

// TestMarkAppendedLater: the record is written and visible at once, costs
// no fsync of its own, and is on disk after Sync, after the next fsync of
// another record, or after Close.
func TestMarkAppendedLater(t *testing.T) {
	path := journalPath(t)
	j, cf := openCounting(t, path)
	a := begin(t, j, message(1))
	b := begin(t, j, message(2))
	before := cf.syncs
	if err := j.MarkAppendedLater(a, 7, 1); err != nil {
		t.Fatal(err)
	}
	if cf.syncs != before {
		t.Errorf("MarkAppendedLater ran %d fsyncs, want none", cf.syncs-before)
	}
	if e := byUIDL(t, j, message(1).UIDL); len(e) != 1 || e[0].Step != Appended || e[0].UID != 1 {
		t.Fatalf("entry after MarkAppendedLater: %+v", e)
	}
	if err := j.Sync(); err != nil {
		t.Fatal(err)
	}
	if cf.syncs != before+1 {
		t.Errorf("Sync ran %d fsyncs, want 1", cf.syncs-before)
	}
	if err := j.Sync(); err != nil || cf.syncs != before+1 {
		t.Errorf("Sync with nothing new: %v, %d more fsyncs; want none", err, cf.syncs-before-1)
	}
	// The record left unsynced at Close is synced by Close.
	if err := j.MarkAppendedLater(b, 7, 2); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if cf.syncs != before+2 {
		t.Errorf("Close ran %d fsyncs, want 1 for the pending record", cf.syncs-before-1)
	}
	j = mustOpen(t, path)
	defer j.Close()
	for i, e := range entries(t, j) {
		if e.Step != Appended || e.UID != uint32(i+1) {
			t.Errorf("entry %d after reopen: step %v UID %d, want appended with UID %d", i, e.Step, e.UID, i+1)
		}
	}
}

// TestSyncReportsFailedFsync: an fsync that fails after MarkAppendedLater is
// reported by Sync, and the journal refuses every later change, so nothing
// is deleted on the strength of a record that may not be on disk.
func TestSyncReportsFailedFsync(t *testing.T) {
	path := journalPath(t)
	j, cf := openCounting(t, path)
	defer j.Close()
	a := begin(t, j, message(1))
	if err := j.MarkAppendedLater(a, 7, 1); err != nil {
		t.Fatal(err)
	}
	cf.failSync = syscall.EIO
	err := j.Sync()
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("Sync = %v, want the fsync's EIO", err)
	}
	cf.failSync = nil
	if later := j.MarkDeleted([]uint64{a}); later != err {
		t.Errorf("MarkDeleted after the failed Sync = %v, want the sticky %v", later, err)
	}
	if later := j.Sync(); later != err {
		t.Errorf("Sync after the failure = %v, want the sticky %v", later, err)
	}
}
