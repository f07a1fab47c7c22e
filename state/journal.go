package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Step is how far the copy of one message has got.
type Step uint8

// The steps of an entry, in the order they happen. See the package
// documentation for why each one is recorded.
const (
	// Appending means the IMAP APPEND is about to be sent or is under way;
	// the message may or may not be in the folder.
	Appending Step = iota + 1
	// Appended means the server confirmed the APPEND.
	Appended
	// Refused means the server rejected the APPEND; the message is still in
	// the POP3 maildrop.
	Refused
	// Deleted means the message was copied and then deleted from POP3.
	Deleted
	// Baseline means the user chose not to copy the message (pop2imap
	// bridge --baseline): it counts as done, and is never deleted.
	Baseline
)

var stepNames = [...]string{Appending: "appending", Appended: "appended", Refused: "refused", Deleted: "deleted", Baseline: "baseline"}

// String returns the step's name as the journal writes it, such as "appended".
func (s Step) String() string {
	if int(s) < len(stepNames) && stepNames[s] != "" {
		return stepNames[s]
	}
	return fmt.Sprintf("Step(%d)", uint8(s))
}

func parseStep(name string) (Step, bool) {
	for s, n := range stepNames {
		if n != "" && n == name {
			return Step(s), true
		}
	}
	return 0, false
}

// canMove reports whether an entry at step from may move to step to.
func canMove(from, to Step) bool {
	switch to {
	case Appended, Refused:
		return from == Appending
	case Deleted:
		return from == Appended
	}
	return false
}

// movesFrom returns the only step an entry may be at to move to step to.
func movesFrom(to Step) Step {
	if to == Deleted {
		return Appended
	}
	return Appending
}

// Entry is the journal's record of one attempt to copy one message.
type Entry struct {
	ID           uint64    // assigned by the journal, unique, increasing
	UIDL         string    // the message's unique ID on the POP3 server
	ListSize     int64     // size from POP3 LIST
	Size         int64     // exact bytes RETR delivered (after unstuffing)
	SHA256       [32]byte  // of those bytes
	NormSHA256   [32]byte  // loose hash: of those bytes without CRs, NUL read as 0x80 (see bridge)
	MessageID    string    // the Message-ID header, "" when there is none
	InternalDate time.Time // the internal date given to APPEND, zero when none
	Step         Step      // how far the copy has got
	UIDValidity  uint32    // from APPENDUID, 0 when unknown
	UID          uint32    // from APPENDUID, 0 when unknown
	Reason       string    // for Refused: the server's text
	Updated      time.Time // when this step was recorded
}

// File is what the journal needs from a file it writes: the journal itself,
// the temporary file written by compaction, and directories (only Sync is
// called on those). *os.File implements it.
type File interface {
	Write(p []byte) (int, error)
	Sync() error
	Truncate(size int64) error
}

// Options adjust how [OpenWithOptions] opens a journal. The zero value gives
// the behaviour of [Open].
type Options struct {
	// WrapFile, when not nil, is called with every file the journal opens
	// for writing or syncing (the journal file, the compaction temporary
	// file, and directories it fsyncs), and the journal writes, truncates
	// and syncs through the File it returns instead. Reading and closing
	// still use the *os.File. Tests use it to simulate a full disk or a
	// failing fsync; f.Name() tells which file is which.
	WrapFile func(f *os.File) File
}

// Journal is an open, locked checkpoint journal. Its methods are safe for
// concurrent use.
type Journal struct {
	path string
	opts Options

	mu      sync.Mutex
	lock    *os.File // holds the flock for as long as the journal is open
	f       *os.File // the journal, opened O_APPEND
	w       File     // f, or what Options.WrapFile made of it
	size    int64    // the length of f: where the next record goes
	idx     *index   // where each entry's records are; see index.go
	nextID  uint64
	zones   map[int]*time.Location // shared by all entries with the same UTC offset
	buf     []byte
	rbuf    []byte  // for reading records back
	err     error   // sticky: set by the first failed write or fsync
	repair  *Repair // what Open cut off, if anything
	closed  bool
	written uint64 // batches of records written, under mu

	// Group commit: one fsync makes durable every batch written before it
	// began, so concurrent callers share it instead of queueing for one
	// each.
	syncMu  sync.Mutex
	synced  uint64 // batches known to be durable, under syncMu
	syncErr error  // the failed fsync, under syncMu
	// newName says that the journal holds no durable record yet: the
	// next fsync also makes its name in the directory durable. Set by
	// open, then under syncMu.
	newName bool
}

// Open opens the journal at path, creating it and its directory if missing.
// It takes the journal's exclusive lock (returning [*LockedError] if another
// run holds it), replays the records, cuts off a torn last record, refuses a
// damaged file with [*CorruptError], and compacts the file when superseded
// records outnumber live entries.
func Open(path string) (*Journal, error) {
	return OpenWithOptions(path, Options{})
}

// OpenWithOptions is [Open] with options.
func OpenWithOptions(path string, opts Options) (*Journal, error) {
	j := &Journal{
		path:   path,
		opts:   opts,
		nextID: 1,
		zones:  make(map[int]*time.Location),
	}
	if err := j.open(); err != nil {
		j.closeFiles()
		return nil, err
	}
	return j, nil
}

// Path returns the path the journal was opened with.
func (j *Journal) Path() string { return j.path }

// Len returns the number of entries.
func (j *Journal) Len() int {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.idx == nil {
		return 0
	}
	return int(j.idx.nrows)
}

// Each calls fn with every entry, in ID order, reading them from disk one
// at a time, and stops at the first error fn returns. Entries added while
// it runs may or may not be seen. fn may call the journal's methods.
func (j *Journal) Each(fn func(Entry) error) error {
	for n := int64(0); ; n++ {
		j.mu.Lock()
		if j.idx == nil {
			j.mu.Unlock()
			return fmt.Errorf("state: journal %s is closed", j.path)
		}
		if n >= j.idx.nrows {
			j.mu.Unlock()
			return nil
		}
		e, err := j.entryAt(n)
		j.mu.Unlock()
		if err != nil {
			return err
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

// Entries returns all entries, in ID order. It holds them all in memory;
// [Journal.Each] does not.
func (j *Journal) Entries() ([]Entry, error) {
	var out []Entry
	err := j.Each(func(e Entry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

// ByUIDL returns the entries for one UIDL, in ID order. There may be
// several: a refused message that was tried again has one entry per attempt.
func (j *Journal) ByUIDL(uidl string) ([]Entry, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.idx == nil {
		return nil, fmt.Errorf("state: journal %s is closed", j.path)
	}
	rows, err := j.idx.lookup(uidl)
	if err != nil {
		return nil, err
	}
	var out []Entry
	for _, n := range rows {
		e, err := j.entryAt(n)
		if err != nil {
			return nil, err
		}
		if e.UIDL == uidl {
			out = append(out, e)
		}
	}
	return out, nil
}

// BeginAppend records that e's message is about to be appended, and returns
// the new entry's ID once the record is on disk. The fields ID, Step,
// UIDValidity, UID, Reason and Updated of e are ignored. It does not look at
// earlier entries for the same UIDL: deciding whether to copy again is the
// caller's job.
func (j *Journal) BeginAppend(e Entry) (uint64, error) {
	return j.createEntry("BeginAppend", e, Appending, 0, 0)
}

// Adopt records that e's message was found already stored in the folder,
// under uidValidity and uid, so that it is not appended again: the entry is
// created directly at step Appended, as if this run had appended it. It
// returns the new entry's ID once the record is on disk. The fields ID,
// Step, UIDValidity, UID, Reason and Updated of e are ignored.
func (j *Journal) Adopt(e Entry, uidValidity, uid uint32) (uint64, error) {
	return j.createEntry("Adopt", e, Appended, uidValidity, uid)
}

// createEntry writes one entry record at step and returns the entry's ID
// once it is durable.
func (j *Journal) createEntry(op string, e Entry, step Step, uidValidity, uid uint32) (uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usable(); err != nil {
		return 0, err
	}
	if t := e.InternalDate; !t.IsZero() && (t.Year() < 0 || t.Year() > 9999) {
		return 0, fmt.Errorf("state: %s %q: internal date %v is out of range", op, e.UIDL, t)
	}
	e.ID = j.nextID
	e.Step = step
	e.UIDValidity, e.UID, e.Reason = uidValidity, uid, ""
	e.InternalDate = j.normTime(e.InternalDate)
	e.Updated = j.now()
	j.buf = appendRecord(j.buf[:0], &e, true)
	if err := j.create(j.buf, []row{{id: e.ID, step: e.Step, full: span{0, uint32(len(j.buf))}}}, []string{e.UIDL}); err != nil {
		return 0, err
	}
	return e.ID, nil
}

// create writes the entry records in b, indexes the new entries (rows
// holds their spans within b), and returns once the records are durable.
// Entries join the index as they are written, in ID order, so that
// callers in other goroutines can create theirs while this fsync runs and
// share the next one; nobody learns a new ID before its record is durable.
func (j *Journal) create(b []byte, rows []row, uidls []string) error {
	off, err := j.write(b)
	if err != nil {
		return err
	}
	for k := range rows {
		rows[k].full.off += off
		if err := j.add(uidls[k], &rows[k]); err != nil {
			return err
		}
	}
	return j.waitSynced(j.written)
}

// AddBaseline records entries that are done without being copied, each
// created directly at step Baseline, and returns their IDs. All records are
// written together and fsync'd once. The fields ID, Step, UIDValidity, UID,
// Reason and Updated of each entry are ignored.
func (j *Journal) AddBaseline(es []Entry) ([]uint64, error) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usable(); err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, nil
	}
	now := j.now()
	rows := make([]row, len(es))
	uidls := make([]string, len(es))
	j.buf = j.buf[:0]
	for k, e := range es {
		e.ID = j.nextID + uint64(k)
		e.Step = Baseline
		e.UIDValidity, e.UID, e.Reason = 0, 0, ""
		e.InternalDate = j.normTime(e.InternalDate)
		e.Updated = now
		start := len(j.buf)
		j.buf = appendRecord(j.buf, &e, true)
		rows[k] = row{id: e.ID, step: Baseline, full: span{int64(start), uint32(len(j.buf) - start)}}
		uidls[k] = e.UIDL
	}
	if err := j.create(j.buf, rows, uidls); err != nil {
		return nil, err
	}
	ids := make([]uint64, len(rows))
	for k := range rows {
		ids[k] = rows[k].id
	}
	return ids, nil
}

// MarkAppended records that entry id's APPEND succeeded, with the UIDVALIDITY
// and UID from APPENDUID (0 when the server gave none). The entry must be
// Appending.
func (j *Journal) MarkAppended(id uint64, uidValidity, uid uint32) error {
	return j.markAppended(id, uidValidity, uid, true)
}

// MarkAppendedLater is MarkAppended without waiting for the fsync: the
// record is written at once and made durable by the next fsync of any
// record, or by Sync. Nothing may act on the record, by deleting the
// message for instance, before Sync returns. Until then a crash of the
// machine (not of the process) may lose it, and the entry is left
// Appending, which is safe: its outcome will be looked up again.
func (j *Journal) MarkAppendedLater(id uint64, uidValidity, uid uint32) error {
	return j.markAppended(id, uidValidity, uid, false)
}

func (j *Journal) markAppended(id uint64, uidValidity, uid uint32, wait bool) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	n, r, err := j.transition("MarkAppended", id, Appended)
	if err != nil {
		return err
	}
	e := Entry{ID: id, Step: Appended, UIDValidity: uidValidity, UID: uid, Updated: j.now()}
	j.buf = appendRecord(j.buf[:0], &e, false)
	r.step, r.app = Appended, span{0, uint32(len(j.buf))}
	if wait {
		r.app.off, err = j.commit(j.buf)
	} else {
		r.app.off, err = j.write(j.buf)
	}
	if err != nil {
		return err
	}
	return j.setRow(n, &r)
}

// Sync returns once every record written so far is on disk.
func (j *Journal) Sync() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usable(); err != nil {
		return err
	}
	return j.waitSynced(j.written)
}

// MarkRefused records that the server refused entry id's APPEND, with the
// server's text. The entry must be Appending.
func (j *Journal) MarkRefused(id uint64, reason string) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	n, r, err := j.transition("MarkRefused", id, Refused)
	if err != nil {
		return err
	}
	e := Entry{ID: id, Step: Refused, Reason: reason, Updated: j.now()}
	j.buf = appendRecord(j.buf[:0], &e, false)
	r.step, r.last = Refused, span{0, uint32(len(j.buf))}
	if r.last.off, err = j.commit(j.buf); err != nil {
		return err
	}
	return j.setRow(n, &r)
}

// MarkDeleted records that the messages of the given entries were deleted
// from POP3. Every entry must be Appended and appear once; otherwise nothing
// is written. All records are written together and fsync'd once.
func (j *Journal) MarkDeleted(ids []uint64) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usable(); err != nil {
		return err
	}
	if len(ids) == 0 {
		return nil
	}
	type change struct {
		n int64
		r row
	}
	cs := make([]change, len(ids))
	seen := make(map[uint64]bool, len(ids))
	for k, id := range ids {
		if seen[id] {
			return fmt.Errorf("state: MarkDeleted: entry %d is listed twice", id)
		}
		seen[id] = true
		n, r, err := j.transition("MarkDeleted", id, Deleted)
		if err != nil {
			return err
		}
		cs[k] = change{n, r}
	}
	now := j.now()
	j.buf = j.buf[:0]
	for k := range cs {
		start := len(j.buf)
		e := Entry{ID: cs[k].r.id, Step: Deleted, Updated: now}
		j.buf = appendRecord(j.buf, &e, false)
		cs[k].r.step, cs[k].r.last = Deleted, span{int64(start), uint32(len(j.buf) - start)}
	}
	off, err := j.commit(j.buf)
	if err != nil {
		return err
	}
	for k := range cs {
		cs[k].r.last.off += off
		if err := j.setRow(cs[k].n, &cs[k].r); err != nil {
			return err
		}
	}
	return nil
}

// Close releases the lock and closes the journal. Calling it again does
// nothing. Entries cannot be read once it is closed.
func (j *Journal) Close() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.closed {
		return nil
	}
	j.closed = true
	var err error
	if j.err == nil {
		err = j.waitSynced(j.written) // what MarkAppendedLater wrote
	}
	return errors.Join(err, j.closeFiles())
}

func (j *Journal) closeFiles() error {
	var errs []error
	if j.idx != nil {
		j.idx.close()
		j.idx = nil
	}
	if j.f != nil {
		if err := j.f.Close(); err != nil {
			errs = append(errs, fileErr("close", j.path, err))
		}
		j.f, j.w = nil, nil
	}
	if j.lock != nil {
		// Closing the only descriptor of the lock file releases the flock.
		if err := j.lock.Close(); err != nil {
			errs = append(errs, fileErr("close", j.lock.Name(), err))
		}
		j.lock = nil
	}
	return errors.Join(errs...)
}

// usable returns the error that makes the journal refuse changes, if any.
func (j *Journal) usable() error {
	if j.err != nil {
		return j.err
	}
	if j.closed {
		return fmt.Errorf("state: journal %s is closed", j.path)
	}
	return nil
}

// transition finds entry id and checks that it may move to step to. It
// returns the entry's row and its number.
func (j *Journal) transition(op string, id uint64, to Step) (int64, row, error) {
	var r row
	if err := j.usable(); err != nil {
		return 0, r, err
	}
	n, ok := j.idx.rowOf(id)
	if !ok {
		return 0, r, fmt.Errorf("state: %s: no entry %d in %s", op, id, j.path)
	}
	if err := j.idx.readRow(n, &r); err != nil {
		return 0, r, j.fail(err)
	}
	if !canMove(r.step, to) {
		return 0, r, fmt.Errorf("state: %s: entry %d is %s; only an entry that is %s can become %s",
			op, id, r.step, movesFrom(to), to)
	}
	return n, r, nil
}

// add indexes a new entry, whose ID is higher than every existing one.
func (j *Journal) add(uidl string, r *row) error {
	if err := j.idx.add(uidl, r); err != nil {
		return j.fail(err)
	}
	j.nextID = r.id + 1
	return nil
}

// setRow stores an entry's changed row.
func (j *Journal) setRow(n int64, r *row) error {
	if err := j.idx.writeRow(n, r); err != nil {
		return j.fail(err)
	}
	return nil
}

// fail makes err, a failure to keep the index, the journal's sticky error:
// the journal on disk is sound, but this Journal no longer knows it.
func (j *Journal) fail(err error) error {
	if j.err == nil {
		j.err = err
	}
	return err
}

// entryAt reads the entry of row n back from the journal.
func (j *Journal) entryAt(n int64) (e Entry, err error) {
	var r row
	if err := j.idx.readRow(n, &r); err != nil {
		return Entry{}, err
	}
	rec, err := j.readRecord(r.full)
	if err == nil {
		e, err = j.newEntry(rec)
	}
	if err != nil {
		return Entry{}, fmt.Errorf("state: read %s: record at byte %d: %w", j.path, r.full.off, err)
	}
	for _, s := range []span{r.app, r.last} {
		if s.n == 0 {
			continue
		}
		rec, err := j.readRecord(s)
		if err == nil {
			err = j.applyStep(&e, rec)
		}
		if err != nil {
			return Entry{}, fmt.Errorf("state: read %s: record at byte %d: %w", j.path, s.off, err)
		}
	}
	if e.ID != r.id || e.Step != r.step {
		return Entry{}, fmt.Errorf("state: read %s: entry %d does not match its index", j.path, r.id)
	}
	return e, nil
}

// commit writes records to the journal and returns once they are durable,
// with the offset they were written at. It is called with j.mu held, and
// releases it while it waits for the fsync, so that callers in other
// goroutines can write their records and share that fsync or the next.
// After a failure the on-disk state is unknown, so the journal refuses
// every later change.
func (j *Journal) commit(b []byte) (int64, error) {
	off, err := j.write(b)
	if err != nil {
		return 0, err
	}
	return off, j.waitSynced(j.written)
}

// write appends one batch of records without waiting for an fsync, and
// returns the offset it was written at.
func (j *Journal) write(b []byte) (int64, error) {
	off := j.size
	if err := writeAll(j.w, b); err != nil {
		j.err = fileErr("write", j.path, err)
		return 0, j.err
	}
	j.size += int64(len(b))
	j.written++
	return off, nil
}

// waitSynced releases j.mu while batch seq is made durable.
func (j *Journal) waitSynced(seq uint64) error {
	j.mu.Unlock()
	err := j.syncThrough(seq)
	j.mu.Lock()
	if err != nil {
		if j.err == nil {
			j.err = err
		}
		return j.err
	}
	return nil
}

// syncThrough returns once batch seq is durable, running an fsync unless
// one that began after the batch was written has already succeeded.
func (j *Journal) syncThrough(seq uint64) error {
	j.syncMu.Lock()
	defer j.syncMu.Unlock()
	if j.synced >= seq {
		return nil
	}
	if j.syncErr != nil {
		return j.syncErr
	}
	j.mu.Lock()
	target := j.written
	j.mu.Unlock()
	if err := j.w.Sync(); err != nil {
		j.syncErr = fileErr("fsync", j.path, err)
		return j.syncErr
	}
	if j.newName {
		if err := j.syncDir(filepath.Dir(j.path)); err != nil {
			j.syncErr = err
			return err
		}
		j.newName = false
	}
	j.synced = target
	return nil
}

func writeAll(w File, b []byte) error {
	n, err := w.Write(b)
	if err == nil && n < len(b) {
		err = io.ErrShortWrite
	}
	return err
}

// fileErr makes "state: <op> <path>: <cause>", dropping the *fs.PathError
// wrapper so the path is not repeated, while errors.Is still sees the cause.
func fileErr(op, path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("state: %s %s: %w", op, path, err)
}

func (j *Journal) now() time.Time {
	return time.Now().UTC()
}

// normTime returns t as replay will decode it: no monotonic reading, and a
// location that depends only on the UTC offset. RFC 3339 keeps only whole
// minutes of offset, so a time with an odd offset is kept in UTC.
func (j *Journal) normTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Time{}
	}
	_, off := t.Zone()
	if off == 0 || off%60 != 0 {
		return t.UTC()
	}
	loc := j.zones[off]
	if loc == nil {
		loc = time.FixedZone("", off)
		j.zones[off] = loc
	}
	return t.In(loc)
}

// wrap returns f as the File the journal writes through.
func (j *Journal) wrap(f *os.File) File {
	if j.opts.WrapFile != nil {
		return j.opts.WrapFile(f)
	}
	return f
}
