package state

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// LockedError is returned by [Open] when another run, in this process or
// another, has the journal open.
type LockedError struct {
	Path string // the journal's path; the lock is held on Path + ".lock"
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("state: journal %s is in use by another pop2imap run (lock held on %s.lock); wait for it to finish or stop it",
		e.Path, e.Path)
}

// CorruptError is returned by [Open] when the journal holds a damaged record
// that is not a torn last record, so replaying past it would guess.
type CorruptError struct {
	Path   string
	Offset int64 // byte offset of the start of the bad line
	Err    error // what is wrong with it
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("state: journal %s is corrupt at byte %d: %v; move it aside to start over (messages already copied will then be found in the folder and not copied twice)",
		e.Path, e.Offset, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// compactSuffix names, after the journal's own name, the temporary file
// written by compaction. The name is fixed, not random: only the holder of
// the journal's lock writes it, so opening a journal removes a stale one
// with one unlink, where a scan of the directory would cost a batch of
// ten thousand journals in one directory time in the square of their
// number.
const compactSuffix = ".compact-tmp"

func (j *Journal) open() error {
	dir := filepath.Dir(j.path)
	if err := j.makeDir(dir); err != nil {
		return err
	}
	lockPath := j.path + ".lock"
	lock, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE|oNoFollow, 0o600)
	if err != nil {
		return fileErr("open", lockPath, err)
	}
	j.lock = lock
	if err := lockFile(lock); err != nil {
		if errors.Is(err, errLocked) {
			return &LockedError{Path: j.path}
		}
		return fileErr("lock", lockPath, err)
	}
	// Holding the lock, any compaction temp file is left over from a run
	// that crashed; the journal itself is still whole, so drop it.
	os.Remove(j.path + compactSuffix)
	os.Remove(j.path + indexSuffix)

	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_APPEND|os.O_CREATE|oNoFollow, 0o600)
	if err != nil {
		return fileErr("open", j.path, err)
	}
	j.f, j.w = f, j.wrap(f)
	fi, err := f.Stat()
	if err != nil {
		return fileErr("stat", j.path, err)
	}
	// A journal made by an older version, or copied in, may be readable
	// by others: it names the mailbox's messages.
	if fi.Mode().Perm() != 0o600 {
		if err := f.Chmod(0o600); err != nil {
			return fileErr("chmod", j.path, err)
		}
	}
	// An entry takes at least one record of some 250 bytes.
	j.idx, err = openIndex(j.path+indexSuffix, fi.Size()/250)
	if err != nil {
		return err
	}
	records, err := j.replay()
	if err != nil {
		return err
	}
	if records == 0 {
		// Created now, or by a run that ended before its first record
		// was durable: nothing says that the header and the file's name
		// in the directory are. The first fsync, which every record waits
		// for, makes both durable, so a new journal costs no fsync of its
		// own.
		j.newName = true
	}
	if live := int(j.idx.nrows); records-live > live {
		return j.compact()
	}
	return nil
}

// replay reads the journal from the start, applies every record, repairs a
// torn tail, and returns the number of records read.
func (j *Journal) replay() (int, error) {
	r := bufio.NewReaderSize(j.f, 64<<10)
	var scratch []byte
	line, complete, err := readLine(r, &scratch)
	if err != nil {
		return 0, fileErr("read", j.path, err)
	}
	if !complete {
		// Empty, or a crash while the header of a new journal was written.
		// A file with anything else in it is not ours to overwrite.
		if !bytes.HasPrefix([]byte(header), line) {
			return 0, &CorruptError{Path: j.path, Err: errNotJournal}
		}
		if len(line) > 0 {
			if err := j.truncate(0); err != nil {
				return 0, err
			}
		}
		j.size = int64(len(header))
		return 0, j.writeHeader()
	}
	if err := parseHeader(line); err != nil {
		var ve *versionError
		if errors.As(err, &ve) {
			return 0, fmt.Errorf("state: journal %s: %w", j.path, err)
		}
		return 0, &CorruptError{Path: j.path, Err: err}
	}
	off := int64(len(line) + 1)
	records := 0
	for {
		line, complete, err := readLine(r, &scratch)
		if err != nil {
			return 0, fileErr("read", j.path, err)
		}
		if !complete {
			j.size = off
			if len(line) > 0 { // a write cut short by a crash
				return records, j.cutTornTail(off, errNoNewline)
			}
			return records, nil
		}
		rec, torn, err := parseLine(line)
		if err != nil {
			if !torn {
				return 0, &CorruptError{Path: j.path, Offset: off, Err: err}
			}
			j.size = off
			if _, perr := r.Peek(1); perr == io.EOF {
				return records, j.cutTornTail(off, err)
			}
			// A record that fails its checksum with more after it: the file
			// was damaged or cut and written to again. Everything before it
			// is sound; what follows cannot be trusted, and the folder is
			// the ground truth for the messages it may have recorded.
			return records, j.salvage(off, err)
		}
		if err := j.apply(rec, span{off, uint32(len(line) + 1)}); err != nil {
			var ce *corruption
			if errors.As(err, &ce) {
				return 0, &CorruptError{Path: j.path, Offset: off, Err: ce.err}
			}
			return 0, err
		}
		records++
		off += int64(len(line) + 1)
	}
}

// readLine returns the next line without its newline, and whether it had one.
// The line is valid until the next call.
func readLine(r *bufio.Reader, scratch *[]byte) (line []byte, complete bool, err error) {
	*scratch = (*scratch)[:0]
	for {
		chunk, err := r.ReadSlice('\n')
		switch {
		case err == nil:
			if len(*scratch) == 0 {
				return chunk[:len(chunk)-1], true, nil
			}
			*scratch = append(*scratch, chunk...)
			return (*scratch)[:len(*scratch)-1], true, nil
		case errors.Is(err, bufio.ErrBufferFull):
			*scratch = append(*scratch, chunk...)
		case err == io.EOF:
			*scratch = append(*scratch, chunk...)
			return *scratch, false, nil
		default:
			return nil, false, err
		}
	}
}

// corruption is what apply returns for a record that cannot be replayed,
// as opposed to a failure to keep the index.
type corruption struct{ err error }

func (c *corruption) Error() string { return c.err.Error() }

// apply replays record r, found at s, into the index.
func (j *Journal) apply(r *record, s span) error {
	if r.UIDL != nil {
		if r.ID < j.nextID {
			return &corruption{fmt.Errorf("entry %d is created again or out of order", r.ID)}
		}
		e, err := j.newEntry(r)
		if err != nil {
			return &corruption{err}
		}
		return j.add(e.UIDL, &row{id: e.ID, step: e.Step, full: s})
	}
	step, ok := parseStep(r.Step)
	if !ok {
		return &corruption{fmt.Errorf("unknown step %q", r.Step)}
	}
	if _, err := parseTime(r.Updated); err != nil {
		return &corruption{fmt.Errorf("bad time: %v", err)}
	}
	n, ok := j.idx.rowOf(r.ID)
	if !ok {
		return &corruption{fmt.Errorf("%s record for unknown entry %d", step, r.ID)}
	}
	var rw row
	if err := j.idx.readRow(n, &rw); err != nil {
		return err
	}
	if !canMove(rw.step, step) {
		return &corruption{fmt.Errorf("entry %d cannot go from %s to %s", r.ID, rw.step, step)}
	}
	if step == Appended {
		rw.app = s
	} else {
		rw.last = s
	}
	rw.step = step
	return j.idx.writeRow(n, &rw)
}

// newEntry makes the entry that an entry record creates.
func (j *Journal) newEntry(r *record) (Entry, error) {
	step, ok := parseStep(r.Step)
	if !ok {
		return Entry{}, fmt.Errorf("unknown step %q", r.Step)
	}
	updated, err := parseTime(r.Updated)
	if err != nil {
		return Entry{}, fmt.Errorf("bad time: %v", err)
	}
	e := Entry{
		ID:          r.ID,
		UIDL:        string(*r.UIDL),
		ListSize:    r.ListSize,
		Size:        r.Size,
		MessageID:   string(r.MessageID),
		Step:        step,
		UIDValidity: r.UIDValidity,
		UID:         r.UID,
		Reason:      string(r.Reason),
		Updated:     j.normTime(updated),
	}
	if e.SHA256, err = decodeHash(r.SHA256); err != nil {
		return Entry{}, err
	}
	if e.NormSHA256, err = decodeHash(r.NormSHA256); err != nil {
		return Entry{}, err
	}
	date, err := parseTime(r.InternalDate)
	if err != nil {
		return Entry{}, fmt.Errorf("bad internal date: %v", err)
	}
	e.InternalDate = j.normTime(date)
	return e, nil
}

// applyStep applies step record r to e. Replay has checked that the
// transition is allowed.
func (j *Journal) applyStep(e *Entry, r *record) error {
	step, ok := parseStep(r.Step)
	if !ok || r.ID != e.ID || r.UIDL != nil {
		return fmt.Errorf("not a step record of entry %d", e.ID)
	}
	updated, err := parseTime(r.Updated)
	if err != nil {
		return fmt.Errorf("bad time: %v", err)
	}
	switch step {
	case Appended:
		e.UIDValidity, e.UID = r.UIDValidity, r.UID
	case Refused:
		e.Reason = string(r.Reason)
	}
	e.Step, e.Updated = step, j.normTime(updated)
	return nil
}

// writeHeader starts an empty journal. It does not fsync: until the first
// record is made durable, a crash can leave nothing that needs the header,
// and an empty or half-written header is started again at the next Open
// (see newName in open).
func (j *Journal) writeHeader() error {
	if err := writeAll(j.w, []byte(header)); err != nil {
		return fileErr("write", j.path, err)
	}
	return nil
}

// Repair describes the damage [Open] found in a journal and cut off. The
// records before Offset were kept; the messages that the dropped bytes may
// have recorded are looked up in the IMAP folder by the next run, so the
// repair loses nothing and copies nothing twice.
type Repair struct {
	Path    string
	Offset  int64 // where the dropped bytes began
	Dropped int64 // how many bytes were cut off
	// Torn is set when only the last record was damaged: the end of a
	// write that a crash interrupted, or a file that was cut short.
	// Otherwise a damaged record had more after it.
	Torn bool
	// SavedAs is where the damaged file was copied before it was cut, so
	// that nothing of it is lost; "" for a torn last record.
	SavedAs string
	Err     error // what was wrong with the first dropped record
}

// String says in one line what was cut off and what follows from it.
func (r *Repair) String() string {
	what := "its last record was cut short (an interrupted write, or a truncated file)"
	if !r.Torn {
		what = "a damaged record with more after it (the damaged file is saved as " + r.SavedAs + ")"
	}
	return fmt.Sprintf("journal %s: %s at byte %d: dropped %d bytes (%v); the entries before it are kept, and messages the dropped part recorded will be found in the folder, not copied again",
		r.Path, what, r.Offset, r.Dropped, r.Err)
}

// Repaired returns what Open cut off the journal, or nil when it was whole.
func (j *Journal) Repaired() *Repair { return j.repair }

// errNoNewline is a last record without its newline: its write never
// finished.
var errNoNewline = errors.New("the last record has no newline")

// cutTornTail cuts off a torn last record and remembers the repair.
func (j *Journal) cutTornTail(off int64, why error) error {
	fi, err := j.f.Stat()
	if err != nil {
		return fileErr("stat", j.path, err)
	}
	j.repair = &Repair{Path: j.path, Offset: off, Dropped: fi.Size() - off, Torn: true, Err: why}
	return j.truncate(off)
}

// salvage keeps the journal up to off, the first damaged record, after
// saving a copy of the whole damaged file beside it.
func (j *Journal) salvage(off int64, why error) error {
	fi, err := j.f.Stat()
	if err != nil {
		return fileErr("stat", j.path, err)
	}
	saved := fmt.Sprintf("%s.damaged-%s", j.path, time.Now().UTC().Format("20060102T150405Z"))
	out, err := os.OpenFile(saved, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fileErr("create", saved, err)
	}
	_, err = io.Copy(out, io.NewSectionReader(j.f, 0, fi.Size()))
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(saved)
		return fileErr("write", saved, err)
	}
	if err := j.syncDir(filepath.Dir(j.path)); err != nil {
		return err
	}
	j.repair = &Repair{Path: j.path, Offset: off, Dropped: fi.Size() - off, SavedAs: saved, Err: why}
	return j.truncate(off)
}

// truncate cuts the journal at off and makes the cut durable.
func (j *Journal) truncate(off int64) error {
	if err := j.w.Truncate(off); err != nil {
		return fileErr("truncate", j.path, err)
	}
	if err := j.w.Sync(); err != nil {
		return fileErr("fsync", j.path, err)
	}
	return nil
}

// compact rewrites the journal with one entry record per entry, the way
// restic's local backend saves a file: temp file in the same directory,
// write, fsync, rename over the journal, fsync the directory.
func (j *Journal) compact() error {
	dir := filepath.Dir(j.path)
	tmp, err := os.OpenFile(j.path+compactSuffix, os.O_RDWR|os.O_CREATE|os.O_TRUNC|oNoFollow, 0o600)
	if err != nil {
		return fileErr("create temporary file in", dir, err)
	}
	name := tmp.Name()
	renamed := false
	defer func() {
		if !renamed {
			tmp.Close()
			os.Remove(name)
		}
	}()
	w := j.wrap(tmp)
	buf := append(j.buf[:0], header...)
	for n := int64(0); n < j.idx.nrows; n++ {
		e, err := j.entryAt(n)
		if err != nil {
			return err
		}
		buf = appendRecord(buf, &e, true)
		if len(buf) >= 64<<10 {
			if err := writeAll(w, buf); err != nil {
				return fileErr("write", name, err)
			}
			buf = buf[:0]
		}
	}
	if err := writeAll(w, buf); err != nil {
		return fileErr("write", name, err)
	}
	j.buf = buf[:0]
	if err := w.Sync(); err != nil {
		return fileErr("fsync", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fileErr("close", name, err)
	}
	if err := os.Rename(name, j.path); err != nil {
		return fileErr("rename", name, err)
	}
	renamed = true
	if err := j.syncDir(dir); err != nil {
		return err
	}
	f, err := os.OpenFile(j.path, os.O_RDWR|os.O_APPEND|oNoFollow, 0o600)
	if err != nil {
		return fileErr("open", j.path, err)
	}
	j.f.Close()
	j.f, j.w = f, j.wrap(f)
	// Every record moved: index the new file.
	if err := j.idx.reset(); err != nil {
		return err
	}
	j.nextID = 1
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fileErr("seek", j.path, err)
	}
	_, err = j.replay()
	return err
}

// makeDir creates dir and its missing parents with mode 0700, and fsyncs the
// parent of each directory it creates so the journal's path survives a crash.
func (j *Journal) makeDir(dir string) error {
	fi, err := os.Stat(dir)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("state: %s is not a directory", dir)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return fileErr("stat", dir, err)
	}
	parent := filepath.Dir(dir)
	if parent != dir {
		if err := j.makeDir(parent); err != nil {
			return err
		}
	}
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return fileErr("mkdir", dir, err)
	}
	return j.syncDir(parent)
}

// syncDir fsyncs a directory. Like restic, it accepts that some file systems
// cannot sync directories at all.
func (j *Journal) syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fileErr("open", dir, err)
	}
	defer d.Close()
	if err := j.wrap(d).Sync(); err != nil &&
		!errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return fileErr("fsync", dir, err)
	}
	return nil
}
