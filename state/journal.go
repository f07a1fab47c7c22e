package state

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"sort"
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
	entries []Entry  // in ID order
	byUIDL  map[string][]int
	nextID  uint64
	zones   map[int]*time.Location // shared by all entries with the same UTC offset
	buf     []byte
	err     error // sticky: set by the first failed write or fsync
	closed  bool
	written uint64 // batches of records written, under mu

	// Group commit: one fsync makes durable every batch written before it
	// began, so concurrent callers share it instead of queueing for one
	// each.
	createMu sync.Mutex // held by BeginAppend and AddBaseline throughout
	syncMu   sync.Mutex
	synced   uint64 // batches known to be durable, under syncMu
	syncErr  error  // the failed fsync, under syncMu
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
		byUIDL: make(map[string][]int),
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

// Entries returns a copy of all entries, in ID order.
func (j *Journal) Entries() []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

// ByUIDL returns a copy of the entries for one UIDL, in ID order. There may be
// several: a refused message that was tried again has one entry per attempt.
func (j *Journal) ByUIDL(uidl string) []Entry {
	j.mu.Lock()
	defer j.mu.Unlock()
	idx := j.byUIDL[uidl]
	if len(idx) == 0 {
		return nil
	}
	out := make([]Entry, len(idx))
	for k, i := range idx {
		out[k] = j.entries[i]
	}
	return out
}

// BeginAppend records that e's message is about to be appended, and returns
// the new entry's ID once the record is on disk. The fields ID, Step,
// UIDValidity, UID, Reason and Updated of e are ignored. It does not look at
// earlier entries for the same UIDL: deciding whether to copy again is the
// caller's job.
func (j *Journal) BeginAppend(e Entry) (uint64, error) {
	// Entries are created one at a time, so that IDs stay in order and an
	// entry joins the list only once it is durable; commit still lets
	// other steps share each fsync meanwhile.
	j.createMu.Lock()
	defer j.createMu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usable(); err != nil {
		return 0, err
	}
	if t := e.InternalDate; !t.IsZero() && (t.Year() < 0 || t.Year() > 9999) {
		return 0, fmt.Errorf("state: BeginAppend %q: internal date %v is out of range", e.UIDL, t)
	}
	e.ID = j.nextID
	e.Step = Appending
	e.UIDValidity, e.UID, e.Reason = 0, 0, ""
	e.InternalDate = j.normTime(e.InternalDate)
	e.Updated = j.now()
	j.buf = appendRecord(j.buf[:0], &e, true)
	if err := j.commit(j.buf); err != nil {
		return 0, err
	}
	j.add(e)
	return e.ID, nil
}

// AddBaseline records entries that are done without being copied, each
// created directly at step Baseline, and returns their IDs. All records are
// written together and fsync'd once. The fields ID, Step, UIDValidity, UID,
// Reason and Updated of each entry are ignored.
func (j *Journal) AddBaseline(es []Entry) ([]uint64, error) {
	j.createMu.Lock()
	defer j.createMu.Unlock()
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := j.usable(); err != nil {
		return nil, err
	}
	if len(es) == 0 {
		return nil, nil
	}
	now := j.now()
	made := make([]Entry, len(es))
	j.buf = j.buf[:0]
	for k, e := range es {
		e.ID = j.nextID + uint64(k)
		e.Step = Baseline
		e.UIDValidity, e.UID, e.Reason = 0, 0, ""
		e.InternalDate = j.normTime(e.InternalDate)
		e.Updated = now
		j.buf = appendRecord(j.buf, &e, true)
		made[k] = e
	}
	if err := j.commit(j.buf); err != nil {
		return nil, err
	}
	ids := make([]uint64, len(made))
	for k, e := range made {
		j.add(e)
		ids[k] = e.ID
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
	i, err := j.transition("MarkAppended", id, Appended)
	if err != nil {
		return err
	}
	e := j.entries[i]
	e.Step, e.UIDValidity, e.UID, e.Updated = Appended, uidValidity, uid, j.now()
	j.buf = appendRecord(j.buf[:0], &e, false)
	if wait {
		err = j.commit(j.buf)
	} else {
		err = j.write(j.buf)
	}
	if err != nil {
		return err
	}
	j.entries[i] = e
	return nil
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
	i, err := j.transition("MarkRefused", id, Refused)
	if err != nil {
		return err
	}
	e := j.entries[i]
	e.Step, e.Reason, e.Updated = Refused, reason, j.now()
	j.buf = appendRecord(j.buf[:0], &e, false)
	if err := j.commit(j.buf); err != nil {
		return err
	}
	j.entries[i] = e
	return nil
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
	idx := make([]int, len(ids))
	seen := make(map[uint64]bool, len(ids))
	for k, id := range ids {
		if seen[id] {
			return fmt.Errorf("state: MarkDeleted: entry %d is listed twice", id)
		}
		seen[id] = true
		i, err := j.transition("MarkDeleted", id, Deleted)
		if err != nil {
			return err
		}
		idx[k] = i
	}
	now := j.now()
	j.buf = j.buf[:0]
	for _, i := range idx {
		e := j.entries[i]
		e.Step, e.Updated = Deleted, now
		j.buf = appendRecord(j.buf, &e, false)
	}
	if err := j.commit(j.buf); err != nil {
		return err
	}
	for _, i := range idx {
		j.entries[i].Step, j.entries[i].Updated = Deleted, now
	}
	return nil
}

// Close releases the lock and closes the journal. Calling it again does
// nothing. The entries stay readable through Entries and ByUIDL.
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

// transition finds entry id and checks that it may move to step to.
func (j *Journal) transition(op string, id uint64, to Step) (int, error) {
	if err := j.usable(); err != nil {
		return 0, err
	}
	i, ok := j.find(id)
	if !ok {
		return 0, fmt.Errorf("state: %s: no entry %d in %s", op, id, j.path)
	}
	if from := j.entries[i].Step; !canMove(from, to) {
		return 0, fmt.Errorf("state: %s: entry %d is %s; only an entry that is %s can become %s",
			op, id, from, movesFrom(to), to)
	}
	return i, nil
}

// find returns the index of entry id. Entries are kept in ID order, so a
// binary search needs no per-entry index.
func (j *Journal) find(id uint64) (int, bool) {
	i := sort.Search(len(j.entries), func(i int) bool { return j.entries[i].ID >= id })
	return i, i < len(j.entries) && j.entries[i].ID == id
}

// add appends a new entry, whose ID is higher than every existing one.
func (j *Journal) add(e Entry) {
	j.entries = append(j.entries, e)
	j.byUIDL[e.UIDL] = append(j.byUIDL[e.UIDL], len(j.entries)-1)
	j.nextID = e.ID + 1
}

// commit writes records to the journal and returns once they are durable.
// It is called with j.mu held, and releases it while it waits for the
// fsync, so that callers in other goroutines can write their records and
// share that fsync or the next. After a failure the on-disk state is
// unknown, so the journal refuses every later change.
func (j *Journal) commit(b []byte) error {
	if err := j.write(b); err != nil {
		return err
	}
	return j.waitSynced(j.written)
}

// write appends one batch of records without waiting for an fsync.
func (j *Journal) write(b []byte) error {
	if err := writeAll(j.w, b); err != nil {
		j.err = fileErr("write", j.path, err)
		return j.err
	}
	j.written++
	return nil
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
