package bridge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/dovecottest"
	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/state"
)

// failingJournalFile fails the journal's writes or fsyncs from the n-th on,
// as a full disk or a dying one does, and notes the moment it first fails.
type failingJournalFile struct {
	state.File
	f *journalFault
}

// diskFailure says how the journal's disk fails.
type diskFailure struct {
	failWrite error // the error a failing write returns
	partial   bool  // a failing write writes half its data first
	short     bool  // a failing write writes half its data and reports no error
	failSync  error // the error a failing fsync returns
}

// journalFault is a diskFailure from the at-th write on: a failing write
// is the at-th write itself, a failing fsync the first fsync after it.
// Counting writes makes every point reachable whatever the scheduling: a
// run makes the same writes every time, but parallel intents may share an
// fsync, so the number of fsyncs varies.
type journalFault struct {
	diskFailure
	at int // counting writes from 1

	mu     sync.Mutex
	writes int
	fired  bool
	onFire func() // called once, when the first failure happens
}

// write counts one write and reports whether it must fail.
func (f *journalFault) write() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.writes++
	return f.failsWrites() && f.fire()
}

// sync reports whether an fsync must fail.
func (f *journalFault) sync() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.failSync != nil && f.fire()
}

func (f *journalFault) failsWrites() bool { return f.failWrite != nil || f.short }

// fire reports whether the fault is on, noting the first time it is.
func (f *journalFault) fire() bool {
	if f.writes < f.at {
		return false
	}
	if !f.fired {
		f.fired = true
		if f.onFire != nil {
			f.onFire()
		}
	}
	return true
}

func (w *failingJournalFile) Write(p []byte) (int, error) {
	f := w.f
	if f.write() {
		switch {
		case f.short:
			return w.File.Write(p[:len(p)/2])
		case f.partial:
			n, _ := w.File.Write(p[:len(p)/2])
			return n, f.failWrite
		}
		return 0, f.failWrite
	}
	return w.File.Write(p)
}

func (w *failingJournalFile) Sync() error {
	if w.f.sync() {
		return w.f.failSync
	}
	return w.File.Sync()
}

// runWithJournal runs one migration on the journal j, as a fresh process
// would, with no retries.
func (e *testEnv) runWithJournal(j *state.Journal, cfg Config) error {
	cfg.Folder = folder
	cfg.RetryDelay = time.Millisecond
	pop, im := e.endpoints()
	m := &Migrator{Config: cfg, POP3: pop, IMAP: im, Journal: j, Stats: &Stats{}}
	return m.Run(context.Background())
}

// TestJournalFaults fails the journal's disk at every kind of record
// (append intent, append confirmed, deletes) in every way a disk fails. The
// run must stop with a JournalError naming the journal and the cause, send
// no QUIT after the failure (which would commit deletes), DELE only
// messages whose copy is durably recorded, and a later run on a healthy
// disk must finish with every message exactly once.
func TestJournalFaults(t *testing.T) {
	kinds := []struct {
		name  string
		fault diskFailure
		text  string
	}{
		{"disk full on write", diskFailure{failWrite: syscall.ENOSPC}, "no space left on device"},
		{"disk full halfway through a write", diskFailure{failWrite: syscall.ENOSPC, partial: true}, "no space left on device"},
		{"short write", diskFailure{short: true}, "short write"},
		{"fsync fails", diskFailure{failSync: syscall.EIO}, "input/output error"},
		{"fsync finds the disk full", diskFailure{failSync: &os.PathError{Op: "sync", Path: "journal", Err: syscall.ENOSPC}}, "no space left on device"},
	}
	// The sample mail makes 11 intents, 11 confirmations and one record of
	// the deletes, after QUIT: 23 writes, whatever the scheduling. A write
	// fault hits write at; an fsync fault the first fsync after it, so at
	// 22 (the last confirmation) it hits the fsync just before the DELEs,
	// and at 23 the one after QUIT.
	const writes = 23
	for _, kind := range kinds {
		for _, at := range []int{1, 2, 3, 6, 12, 17, writes - 1, writes} {
			t.Run(fmt.Sprintf("%s/at %d", kind.name, at), func(t *testing.T) {
				e := newTestEnv(t, sampleMessages(t), pop3test.Config{})
				if j, err := state.Open(e.journal); err != nil { // created on a healthy disk
					t.Fatal(err)
				} else {
					j.Close()
				}
				fault := journalFault{diskFailure: kind.fault, at: at}
				logAtFault := -1
				fault.onFire = func() { logAtFault = len(e.pop.Log()) }
				j, err := state.OpenWithOptions(e.journal, state.Options{WrapFile: func(f *os.File) state.File {
					if f.Name() == e.journal {
						return &failingJournalFile{File: f, f: &fault}
					}
					return f
				}})
				if err != nil {
					t.Fatal(err)
				}
				runErr := e.runWithJournal(j, Config{Delete: true, IMAPConns: 2, Window: 4})
				j.Close()
				if !fault.fired {
					t.Fatalf("no fault fired after %d writes (want %d); run error: %v", fault.writes, writes, runErr)
				}
				var jerr *JournalError
				if !errors.As(runErr, &jerr) {
					t.Fatalf("err = %v, want a *JournalError", runErr)
				}
				if msg := runErr.Error(); !strings.Contains(msg, e.journal) || !strings.Contains(msg, kind.text) {
					t.Errorf("error %q does not name the journal and %q", msg, kind.text)
				}
				if kind.fault.failSync != nil && at == writes-1 {
					// The fsync just before the DELEs: every message was
					// retrieved, and not one DELE may follow.
					if n := countPrefix(e.pop.Log()[:logAtFault], "RETR"); n != len(e.source) {
						t.Errorf("%d RETRs before the failing fsync, want all %d: it is not the one before the DELEs", n, len(e.source))
					}
					if n := countPrefix(e.pop.Log(), "DELE"); n != 0 {
						t.Errorf("%d DELEs after the fsync before them failed", n)
					}
				}
				// A journal failure must not be retried: one POP3 session.
				if n := countPrefix(e.pop.Log(), "STAT"); n != 1 {
					t.Errorf("%d POP3 sessions: a journal failure must not be retried", n)
				}
				log := e.pop.Log()
				after := log[logAtFault:]
				quitBefore := false
				for _, l := range log[:logAtFault] {
					quitBefore = quitBefore || l == "QUIT"
				}
				for _, l := range after {
					if l == "QUIT" {
						t.Errorf("QUIT sent after the journal failed: it commits deletes of an unrecorded session (log after the fault: %q)", after)
					}
				}
				// Every DELE of the failed session must be of a message
				// whose copy is on disk.
				durable := map[string]bool{}
				for _, en := range readEntries(t, e.journal) {
					if en.Step == state.Appended || en.Step == state.Deleted {
						durable[en.UIDL] = true
					}
				}
				msgs := sampleMessages(t)
				for _, l := range log {
					n, ok := strings.CutPrefix(l, "DELE ")
					if !ok {
						continue
					}
					i, _ := strconv.Atoi(n)
					if i < 1 || i > len(msgs) || !durable[msgs[i-1].UIDL] {
						t.Errorf("%s sent, but the journal does not hold the copy of message %s", l, n)
					}
				}
				if !quitBefore {
					if got := len(e.pop.Messages()); got != len(msgs) {
						t.Errorf("the failed session deleted %d messages", len(msgs)-got)
					}
				}

				e.runUntilDone(Config{Delete: true})
				if extra, missing := duplicated(e.stored(), e.source); len(extra)+len(missing) > 0 {
					t.Errorf("stored too often: %q; missing or altered: %q", extra, missing)
				}
				e.assertExactlyOnce(e.source)
				if n := len(e.pop.Messages()); n != 0 {
					t.Errorf("after the rerun the POP3 maildrop still holds %d messages", n)
				}
			})
		}
	}
}

// orderFile notes each write and fsync of the journal, with how many
// commands the POP3 server had received at that moment.
type orderFile struct {
	state.File
	pop *pop3test.Server

	mu  sync.Mutex
	ops []journalOp
}

type journalOp struct {
	sync   bool
	popLog int
}

func (f *orderFile) note(sync bool) {
	n := len(f.pop.Log())
	f.mu.Lock()
	f.ops = append(f.ops, journalOp{sync, n})
	f.mu.Unlock()
}

func (f *orderFile) Write(p []byte) (int, error) {
	n, err := f.File.Write(p)
	f.note(false)
	return n, err
}

func (f *orderFile) Sync() error {
	err := f.File.Sync()
	f.note(true)
	return err
}

// TestNoDeleBeforeFsync: the appenders record each success without waiting
// for its fsync, so the run must fsync every record written before it
// sends the first DELE.
func TestNoDeleBeforeFsync(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t), pop3test.Config{})
	var of *orderFile
	j, err := state.OpenWithOptions(e.journal, state.Options{WrapFile: func(f *os.File) state.File {
		if f.Name() != e.journal {
			return f
		}
		of = &orderFile{File: f, pop: e.pop}
		return of
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	if err := e.runWithJournal(j, Config{Delete: true, IMAPConns: 2, Window: 4}); err != nil {
		t.Fatal(err)
	}
	firstDele := -1
	for i, l := range e.pop.Log() {
		if strings.HasPrefix(l, "DELE ") {
			firstDele = i
			break
		}
	}
	if firstDele < 0 {
		t.Fatal("no DELE was sent")
	}
	of.mu.Lock()
	defer of.mu.Unlock()
	// Every write noted before the first DELE reached the server must be
	// followed, still before it, by an fsync.
	unsynced := 0
	for _, op := range of.ops {
		if op.popLog > firstDele {
			break
		}
		if op.sync {
			unsynced = 0
		} else {
			unsynced++
		}
	}
	if unsynced > 0 {
		t.Errorf("%d journal writes were not fsync'd when the first DELE was sent", unsynced)
	}
}

// readEntries reads a journal as the next run would find it.
func readEntries(t *testing.T, path string) []state.Entry {
	t.Helper()
	j, err := state.Open(path)
	if err != nil {
		t.Fatalf("the journal does not reopen after the failure: %v", err)
	}
	defer j.Close()
	es, err := j.Entries()
	if err != nil {
		t.Fatalf("the journal does not read back: %v", err)
	}
	return es
}

// TestJournalOnFullTmpfs puts the journal on a real, tiny, nearly full
// tmpfs. The run stops on ENOSPC with a JournalError and sends no QUIT;
// once space is freed, a rerun finishes with every message exactly once.
//
// It needs root to mount the tmpfs. Where POP2IMAP_DOVECOT=require (as in
// CI, which runs as root for Dovecot anyway), a failed mount fails the test
// instead of skipping it, so that CI cannot pass without running it.
func TestJournalOnFullTmpfs(t *testing.T) {
	skip := t.Skipf
	if os.Getenv(dovecottest.EnvVar) == "require" {
		skip = t.Fatalf
	}
	if os.Geteuid() != 0 {
		skip("mounting a tmpfs needs root")
	}
	mnt := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mnt).CombinedOutput(); err != nil {
		skip("cannot mount a tmpfs: %v: %s", err, strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() { exec.Command("umount", mnt).Run() })
	// Enough messages that their records need more than one page.
	msgs := sampleMessages(t)
	for i := 0; i < 60; i++ {
		msgs = append(msgs, pop3test.Message{UIDL: fmt.Sprintf("more-%d", i),
			Data: []byte(fmt.Sprintf("Subject: more %d\r\nMessage-ID: <more-%d@x>\r\n\r\nbody\r\n", i, i))})
	}
	e := newTestEnv(t, msgs, pop3test.Config{})
	e.journal = filepath.Join(mnt, "test.journal")
	if j, err := state.Open(e.journal); err != nil {
		t.Fatal(err)
	} else {
		j.Close()
	}
	// Fill the disk. tmpfs allocates whole pages, so the journal still has
	// the rest of its last page: room for a record or two, not for the run.
	filler := filepath.Join(mnt, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	for buf := make([]byte, 512); ; {
		if _, err := f.Write(buf); err != nil {
			break
		}
	}
	f.Close()
	_, err = e.run(Config{Delete: true, Retries: -1})
	var jerr *JournalError
	if !errors.As(err, &jerr) || !strings.Contains(err.Error(), "no space left on device") {
		t.Fatalf("err = %v, want a JournalError for ENOSPC", err)
	}
	for _, l := range e.pop.Log() {
		if l == "QUIT" {
			t.Error("QUIT was sent although the journal could not record the session")
		}
	}
	if got := len(e.pop.Messages()); got != len(e.source) {
		t.Errorf("the failed run deleted %d messages", len(e.source)-got)
	}
	os.Remove(filler)
	e.runUntilDone(Config{Delete: true})
	if extra, missing := duplicated(e.stored(), e.source); len(extra)+len(missing) > 0 {
		t.Errorf("stored too often: %q; missing or altered: %q", extra, missing)
	}
	e.assertExactlyOnce(e.source)
	if n := len(e.pop.Messages()); n != 0 {
		t.Errorf("after the rerun the POP3 maildrop still holds %d messages", n)
	}
}

// duplicated returns the start of every message stored more often than the
// source holds it, and of every source message not stored as often.
func duplicated(stored, source [][]byte) (extra, missing []string) {
	count := map[string]int{}
	for _, m := range source {
		count[string(m)]++
	}
	for _, m := range stored {
		count[string(m)]--
		if count[string(m)] == -1 {
			extra = append(extra, fmt.Sprintf("%.60q (%d bytes)", m, len(m)))
		}
	}
	for _, m := range source {
		if count[string(m)] > 0 {
			missing = append(missing, fmt.Sprintf("%.60q (%d bytes)", m, len(m)))
			count[string(m)] = 0
		}
	}
	return extra, missing
}

func countPrefix(lines []string, prefix string) int {
	n := 0
	for _, l := range lines {
		if strings.HasPrefix(l, prefix) {
			n++
		}
	}
	return n
}
