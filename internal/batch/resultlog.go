package batch

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/pop2imap/pop2imap/internal/errkind"
)

// resultsPattern matches the results log of every shard in a state
// directory: results.jsonl and results-I-of-N.jsonl.
const resultsPattern = "results*.jsonl"

// maxResultLine bounds one line of a results log; a Result is a few
// hundred bytes.
const maxResultLine = 1 << 20

// LogName is the file name of a shard's results log: results.jsonl for the
// whole batch, results-I-of-N.jsonl for shard I/N, so that shards sharing a
// state directory on one volume never write to one file.
func LogName(shard Shard) string {
	if shard.Count == 0 {
		return "results.jsonl"
	}
	return fmt.Sprintf("results-%d-of-%d.jsonl", shard.Index, shard.Count)
}

// Log appends Results to one results log, one JSON line per attempt. Each
// Write is one write of one whole line, then an fsync, so that a line once
// written survives a crash, and a run killed mid-write leaves at most a
// torn last line, which OpenLog cuts off and ReadResults skips. Its
// methods may be called from many goroutines. One log has one writer: a
// second run of the same shard on the same directory must not run at once
// (its journals' locks would refuse it anyway).
type Log struct {
	mu   sync.Mutex
	f    *os.File
	path string
	end  int64 // the end of the last whole line
	err  error // a failure that leaves the file in doubt: no more writes
}

// OpenLog opens, or creates with mode 0600, the results log of shard in
// the state directory dir, which it creates (0700) if missing. A torn last
// line, from a run killed mid-write, is cut off first, so that the next
// line does not join it. It refuses a symbolic link.
func OpenLog(dir string, shard Shard) (*Log, error) {
	path := filepath.Join(dir, LogName(shard))
	fail := func(op string, err error) (*Log, error) { return nil, &LogError{Path: path, Op: op, Err: err} }
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fail("mkdir", err)
	}
	f, err := os.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|oNoFollow, 0o600)
	if err != nil {
		return fail("open", err)
	}
	l := &Log{f: f, path: path}
	if err := l.repair(); err != nil {
		f.Close()
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return fail("fsync directory", err)
	}
	return l, nil
}

// repair makes the file private and cuts off a torn last line.
func (l *Log) repair() error {
	fail := func(op string, err error) error { return &LogError{Path: l.path, Op: op, Err: err} }
	fi, err := l.f.Stat()
	if err != nil {
		return fail("stat", err)
	}
	if !fi.Mode().IsRegular() {
		return fail("open", errors.New("not a regular file"))
	}
	if fi.Mode().Perm() != 0o600 {
		if err := l.f.Chmod(0o600); err != nil {
			return fail("chmod", err)
		}
	}
	end, err := wholeLinesEnd(l.f, fi.Size())
	if err != nil {
		return fail("read", err)
	}
	if end < fi.Size() {
		if err := l.f.Truncate(end); err != nil {
			return fail("cut off the torn last line", err)
		}
		if err := l.f.Sync(); err != nil {
			return fail("fsync", err)
		}
	}
	l.end = end
	return nil
}

// wholeLinesEnd returns the offset just past the last newline of the
// first size bytes of f, or 0 when there is none.
func wholeLinesEnd(f *os.File, size int64) (int64, error) {
	buf := make([]byte, 4096)
	for off := size; off > 0; {
		n := min(int64(len(buf)), off)
		off -= n
		if _, err := f.ReadAt(buf[:n], off); err != nil {
			return 0, err
		}
		if i := bytes.LastIndexByte(buf[:n], '\n'); i >= 0 {
			return off + int64(i) + 1, nil
		}
	}
	return 0, nil
}

// Path is the log's file.
func (l *Log) Path() string { return l.path }

// Write appends r as one line and fsyncs it. A write that fails is undone
// when it can be; after a failure that cannot be undone, or a failed
// fsync, every later Write fails too.
func (l *Log) Write(r Result) error {
	line, err := json.Marshal(r) // escapes newlines: one line
	if err != nil {
		return &LogError{Path: l.path, Op: "encode", Err: err}
	}
	line = append(line, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	if _, err := l.f.Write(line); err != nil {
		werr := &LogError{Path: l.path, Op: "write", Err: err}
		if terr := l.f.Truncate(l.end); terr != nil {
			l.err = werr
		}
		return werr
	}
	if err := l.f.Sync(); err != nil {
		// After a failed fsync what reached the disk is unknown.
		l.err = &LogError{Path: l.path, Op: "fsync", Err: err}
		return l.err
	}
	l.end += int64(len(line))
	return nil
}

// Close closes the file; every Write has already been synced.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		l.err = &LogError{Path: l.path, Op: "write", Err: os.ErrClosed}
	}
	if err := l.f.Close(); err != nil {
		return &LogError{Path: l.path, Op: "close", Err: err}
	}
	return nil
}

// syncDir fsyncs a directory, so that a new file's name is durable too. Like
// package state, it accepts file systems that cannot sync directories.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, syscall.EINVAL) && !errors.Is(err, syscall.ENOTSUP) {
		return err
	}
	return nil
}

// ReadResults reads every results log in the state directory dir (that of
// each shard), in the order of their names and lines. A directory that
// does not exist yet holds no results. A last line without its newline is
// a write cut short by a crash, or one in progress by another shard: it is
// skipped, and counted in torn. Anything else that is not a Result, such
// as a damaged line in the middle, is a *ResultsError naming its file and
// line.
func ReadResults(dir string) (results []Result, torn int, err error) {
	torn, err = eachResult(dir, func(r Result) { results = append(results, r) })
	if err != nil {
		return nil, 0, err
	}
	return results, torn, nil
}

// ReadLatest is Latest(ReadResults(dir)), read as a stream: it holds one
// result per account, not every attempt that the logs have gathered over
// many reruns.
func ReadLatest(dir string) (latest map[string]Result, torn int, err error) {
	latest = make(map[string]Result)
	torn, err = eachResult(dir, func(r Result) { keepLatest(latest, r) })
	if err != nil {
		return nil, 0, err
	}
	return latest, torn, nil
}

// eachResult calls fn with every result in the logs of dir, in the order
// ReadResults returns them.
func eachResult(dir string, fn func(Result)) (torn int, err error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, &LogError{Path: dir, Op: "read directory", Err: err}
	}
	for _, e := range entries {
		if ok, _ := filepath.Match(resultsPattern, e.Name()); !ok || !e.Type().IsRegular() {
			continue
		}
		t, err := readLog(filepath.Join(dir, e.Name()), fn)
		if err != nil {
			return 0, err
		}
		if t {
			torn++
		}
	}
	return torn, nil
}

// readLog calls fn with each result of one results log; torn reports a
// last line cut short.
func readLog(path string, fn func(Result)) (torn bool, err error) {
	f, err := os.Open(path)
	if err != nil {
		return false, &LogError{Path: path, Op: "open", Err: err}
	}
	defer f.Close()
	br := bufio.NewReaderSize(f, maxResultLine)
	for n := 1; ; n++ {
		line, err := br.ReadSlice('\n')
		switch {
		case err == io.EOF:
			return len(line) > 0, nil
		case errors.Is(err, bufio.ErrBufferFull):
			return false, &ResultsError{Path: path, Line: n, Err: fmt.Errorf("longer than %d KiB", maxResultLine>>10)}
		case err != nil:
			return false, &LogError{Path: path, Op: "read", Err: err}
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r Result
		if err := json.Unmarshal(line, &r); err != nil {
			return false, &ResultsError{Path: path, Line: n, Err: err}
		}
		if r.ID == "" {
			return false, &ResultsError{Path: path, Line: n, Err: errors.New("a result without an account id")}
		}
		fn(r)
	}
}

// LogError is a results log that cannot be opened, read or written.
type LogError struct {
	Path string
	Op   string // "open", "write", "fsync", ...
	Err  error
}

func (e *LogError) Error() string {
	return fmt.Sprintf("batch: results log %s: %s: %v", e.Path, e.Op, e.Err)
}

func (e *LogError) Unwrap() error { return e.Err }

// ErrorKind is errkind.Journal: the state directory cannot be used.
func (e *LogError) ErrorKind() errkind.Kind { return errkind.Journal }

// ResultsError is a line of a results log that is not a Result and is not
// a torn last line: the file was damaged or edited.
type ResultsError struct {
	Path string
	Line int
	Err  error
}

func (e *ResultsError) Error() string {
	return fmt.Sprintf("batch: %s:%d: not a result: %v; move the file aside or remove the line (the journals still know what was copied)", e.Path, e.Line, e.Err)
}

func (e *ResultsError) Unwrap() error { return e.Err }

// ErrorKind is errkind.Journal.
func (e *ResultsError) ErrorKind() errkind.Kind { return errkind.Journal }
