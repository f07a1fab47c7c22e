package state

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

const holdLockEnv = "POP2IMAP_STATE_TEST_HOLD_LOCK"

// TestMain doubles as the helper process of TestLockAcrossProcesses: with
// holdLockEnv set, the test binary opens that journal, says "locked", and
// holds the lock until its stdin closes.
func TestMain(m *testing.M) {
	if path := os.Getenv(holdLockEnv); path != "" {
		j, err := Open(path)
		if err != nil {
			fmt.Println("error:", err)
			os.Exit(1)
		}
		fmt.Println("locked")
		io.Copy(io.Discard, os.Stdin)
		j.Close()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// journalPath returns a journal path in a directory that does not exist yet.
func journalPath(t testing.TB) string {
	return filepath.Join(t.TempDir(), "state", "pop2imap", "test.journal")
}

func mustOpen(t testing.TB, path string) *Journal {
	t.Helper()
	j, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return j
}

// entries returns j's entries, failing the test if they cannot be read.
func entries(t testing.TB, j *Journal) []Entry {
	t.Helper()
	es, err := j.Entries()
	if err != nil {
		t.Fatalf("Entries: %v", err)
	}
	return es
}

// byUIDL returns j's entries for uidl, failing the test if they cannot be
// read.
func byUIDL(t testing.TB, j *Journal, uidl string) []Entry {
	t.Helper()
	es, err := j.ByUIDL(uidl)
	if err != nil {
		t.Fatalf("ByUIDL(%q): %v", uidl, err)
	}
	return es
}

func reopen(t testing.TB, j *Journal) *Journal {
	t.Helper()
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return mustOpen(t, j.Path())
}

// message returns an Entry as the pipeline would pass it to BeginAppend.
func message(n int) Entry {
	body := fmt.Sprintf("Message-ID: <%d@example.com>\n\nbody %d\n", n, n)
	return Entry{
		UIDL:         fmt.Sprintf("UID%06d", n),
		ListSize:     int64(len(body) + 2),
		Size:         int64(len(body)),
		SHA256:       sha256.Sum256([]byte(body)),
		NormSHA256:   sha256.Sum256([]byte(strings.ReplaceAll(body, "\n", "\r\n"))),
		MessageID:    fmt.Sprintf("<%d@example.com>", n),
		InternalDate: time.Date(2024, 3, 1, 12, 0, n%60, 0, time.FixedZone("", 3600)),
	}
}

func begin(t testing.TB, j *Journal, e Entry) uint64 {
	t.Helper()
	id, err := j.BeginAppend(e)
	if err != nil {
		t.Fatalf("BeginAppend(%q): %v", e.UIDL, err)
	}
	return id
}

func sameEntries(t testing.TB, what string, got, want []Entry) {
	t.Helper()
	if reflect.DeepEqual(got, want) {
		return
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d entries, want %d", what, len(got), len(want))
	}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Fatalf("%s: entry %d differs:\n got %+v\nwant %+v", what, i, got[i], want[i])
		}
	}
}

func fileSize(t testing.TB, path string) int64 {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Size()
}

func countLines(t testing.TB, path string) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Count(data, []byte("\n"))
}

// TestRoundTrip proves that every step, and every awkward field value,
// reads back exactly the same after Close and Open.
// refusedReasons are servers' refusals with what a reason can carry:
// quotes, CR LF, a bare CR, a tab, a NUL, U+2028, and bytes that are not
// UTF-8 (which take another encoding).
var refusedReasons = map[string]string{
	"refused":            "[TOOBIG] message \"too\" large\r\nsecond\\line\rthird\tx\x00\u2028 ü",
	"refused, not UTF-8": "[TOOBIG] message \"too\" large\r\n\xff",
}

func TestRoundTrip(t *testing.T) {
	lmt, err := time.LoadLocation("Europe/Amsterdam")
	if err != nil {
		lmt = time.FixedZone("LMT", 1172) // an offset of odd seconds, as old zones have
	}
	odd := []Entry{
		{UIDL: "typical", MessageID: "<1@example.com>", InternalDate: time.Date(2024, 3, 1, 12, 0, 1, 0, time.FixedZone("", 3600))},
		{UIDL: "no date, no Message-ID"},
		{UIDL: "bad-utf8-\xff\xfe", MessageID: "<\x80@x>"},
		{UIDL: `quote"back\slash`, MessageID: "<a&b>\n\t\x01\x1f\x7f ünïcode \u2028"},
		{UIDL: "", MessageID: ""},
		{UIDL: "zone-west", InternalDate: time.Date(2023, 12, 31, 23, 59, 59, 0, time.FixedZone("PST", -8*3600))},
		{UIDL: "zone-local", InternalDate: time.Date(2020, 1, 2, 3, 4, 5, 6, time.Local)},
		{UIDL: "zone-lmt", InternalDate: time.Date(1900, 1, 2, 3, 4, 5, 0, lmt)},
		{UIDL: "monotonic", InternalDate: time.Now()},
		{UIDL: "big", ListSize: 1 << 40, Size: 1<<40 - 1},
	}
	tests := []struct {
		name  string
		steps func(t *testing.T, j *Journal, id uint64)
	}{
		{"appending", func(t *testing.T, j *Journal, id uint64) {}},
		{"appended", func(t *testing.T, j *Journal, id uint64) {
			if err := j.MarkAppended(id, 1700000000, 42); err != nil {
				t.Fatal(err)
			}
		}},
		{"appended without APPENDUID", func(t *testing.T, j *Journal, id uint64) {
			if err := j.MarkAppended(id, 0, 0); err != nil {
				t.Fatal(err)
			}
		}},
		{"refused", func(t *testing.T, j *Journal, id uint64) {
			if err := j.MarkRefused(id, refusedReasons["refused"]); err != nil {
				t.Fatal(err)
			}
		}},
		{"refused, not UTF-8", func(t *testing.T, j *Journal, id uint64) {
			if err := j.MarkRefused(id, refusedReasons["refused, not UTF-8"]); err != nil {
				t.Fatal(err)
			}
		}},
		{"deleted", func(t *testing.T, j *Journal, id uint64) {
			if err := j.MarkAppended(id, 7, 8); err != nil {
				t.Fatal(err)
			}
			if err := j.MarkDeleted([]uint64{id}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := mustOpen(t, journalPath(t))
			defer j.Close()
			for i, o := range odd {
				e := message(i)
				e.UIDL, e.MessageID, e.InternalDate = o.UIDL, o.MessageID, o.InternalDate
				if o.Size != 0 {
					e.ListSize, e.Size = o.ListSize, o.Size
				}
				tt.steps(t, j, begin(t, j, e))
				got := byUIDL(t, j, o.UIDL)[0]
				if got.MessageID != o.MessageID || !got.InternalDate.Equal(o.InternalDate) || got.Size != e.Size || got.SHA256 != e.SHA256 {
					t.Fatalf("entry %+v does not hold what was recorded: %+v", got, e)
				}
			}
			want := entries(t, j)
			for _, e := range want {
				if e.Updated.IsZero() {
					t.Fatalf("entry %d has no Updated time", e.ID)
				}
			}
			j = reopen(t, j)
			sameEntries(t, "after reopen", entries(t, j), want)
			for _, e := range want {
				got := byUIDL(t, j, e.UIDL)
				if len(got) != 1 || !reflect.DeepEqual(got[0], e) {
					t.Fatalf("ByUIDL(%q) = %+v, want [%+v]", e.UIDL, got, e)
				}
				// Expected from the input, not from the code's own output.
				if reason, ok := refusedReasons[tt.name]; ok && (got[0].Step != Refused || got[0].Reason != reason) {
					t.Fatalf("after reopen: step %v, reason %q; want Refused, %q", got[0].Step, got[0].Reason, reason)
				}
			}
		})
	}
}

// TestEntryFields checks what BeginAppend and the Mark methods put in an
// entry, and that IDs increase across reopen.
func TestEntryFields(t *testing.T) {
	j := mustOpen(t, journalPath(t))
	defer j.Close()
	in := message(1)
	in.ID, in.Step, in.UID, in.Reason = 99, Deleted, 5, "ignored" // BeginAppend ignores these
	before := time.Now()
	id := begin(t, j, in)
	if id != 1 {
		t.Fatalf("first ID = %d, want 1", id)
	}
	got := byUIDL(t, j, in.UIDL)[0]
	want := message(1)
	want.ID, want.Step, want.Updated = 1, Appending, got.Updated
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("entry = %+v, want %+v", got, want)
	}
	if got.Updated.Before(before.Add(-time.Second)) || got.Updated.After(time.Now().Add(time.Second)) {
		t.Fatalf("Updated = %v, want about now", got.Updated)
	}
	if err := j.MarkRefused(id, "no"); err != nil {
		t.Fatal(err)
	}
	j = reopen(t, j)
	defer j.Close()
	id2 := begin(t, j, message(1)) // trying a refused message again is a new entry
	if id2 != 2 {
		t.Fatalf("ID after reopen = %d, want 2", id2)
	}
	hist := byUIDL(t, j, in.UIDL)
	if len(hist) != 2 || hist[0].Step != Refused || hist[0].Reason != "no" || hist[1].Step != Appending {
		t.Fatalf("ByUIDL history = %+v", hist)
	}
	if byUIDL(t, j, "nope") != nil {
		t.Fatal("ByUIDL of an unknown UIDL is not empty")
	}
	// The returned slices are copies.
	entries(t, j)[0].UIDL = "changed"
	byUIDL(t, j, in.UIDL)[0].UIDL = "changed"
	if entries(t, j)[0].UIDL != in.UIDL {
		t.Fatal("Entries returned the journal's own slice")
	}
}

// TestBadTransitions proves that a call out of order is an error and writes
// nothing.
func TestBadTransitions(t *testing.T) {
	path := journalPath(t)
	j := mustOpen(t, path)
	defer j.Close()
	appending := begin(t, j, message(1))
	appended := begin(t, j, message(2))
	refused := begin(t, j, message(3))
	deleted := begin(t, j, message(4))
	for _, err := range []error{
		j.MarkAppended(appended, 1, 1), j.MarkRefused(refused, "x"),
		j.MarkAppended(deleted, 1, 2), j.MarkDeleted([]uint64{deleted}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		call func() error
	}{
		{"appended twice", func() error { return j.MarkAppended(appended, 1, 1) }},
		{"refused after appended", func() error { return j.MarkRefused(appended, "x") }},
		{"appended after refused", func() error { return j.MarkAppended(refused, 1, 1) }},
		{"refused twice", func() error { return j.MarkRefused(refused, "x") }},
		{"deleted while appending", func() error { return j.MarkDeleted([]uint64{appending}) }},
		{"deleted after refused", func() error { return j.MarkDeleted([]uint64{refused}) }},
		{"deleted twice", func() error { return j.MarkDeleted([]uint64{deleted}) }},
		{"appended after deleted", func() error { return j.MarkAppended(deleted, 1, 1) }},
		{"unknown id", func() error { return j.MarkAppended(999, 1, 1) }},
		{"id zero", func() error { return j.MarkRefused(0, "x") }},
		{"batch with one bad id", func() error { return j.MarkDeleted([]uint64{appended, appending}) }},
		{"batch with a duplicate", func() error { return j.MarkDeleted([]uint64{appended, appended}) }},
		{"date out of range", func() error {
			e := message(5)
			e.InternalDate = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
			_, err := j.BeginAppend(e)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			size := fileSize(t, path)
			before := entries(t, j)
			err := tt.call()
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), "state: ") {
				t.Errorf("error %q does not start with the package name", err)
			}
			if got := fileSize(t, path); got != size {
				t.Fatalf("journal grew from %d to %d bytes", size, got)
			}
			sameEntries(t, "entries", entries(t, j), before)
		})
	}
	// The journal is still usable: these are programming errors, not I/O errors.
	if err := j.MarkDeleted([]uint64{appended}); err != nil {
		t.Fatal(err)
	}
}

// TestTornTail proves that what a crash in the middle of a write leaves at
// the end of the journal is cut off, and the journal stays appendable.
func TestTornTail(t *testing.T) {
	tests := []struct {
		name string
		tail func(next []byte) []byte // next is the record the crash interrupted
	}{
		{"half a line", func(next []byte) []byte { return next[:len(next)/2] }},
		{"a few bytes", func(next []byte) []byte { return next[:3] }},
		{"line without newline", func(next []byte) []byte { return next[:len(next)-1] }},
		{"bad checksum on last line", func(next []byte) []byte {
			b := bytes.Clone(next)
			b[len(b)-3] ^= 0x20
			return b
		}},
		{"garbage last line", func(next []byte) []byte { return []byte("\x00\x00zz\n") }},
		{"zeros", func(next []byte) []byte { return make([]byte, 100) }},
		{"empty last line", func(next []byte) []byte { return []byte("\n") }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := journalPath(t)
			j := mustOpen(t, path)
			id := begin(t, j, message(1))
			if err := j.MarkAppended(id, 1, 1); err != nil {
				t.Fatal(err)
			}
			begin(t, j, message(2))
			want := entries(t, j)
			j.Close()
			good := fileSize(t, path)

			e := want[1]
			e.Step, e.UIDValidity, e.UID, e.Updated = Appended, 1, 2, time.Now().UTC()
			appendBytes(t, path, tt.tail(appendRecord(nil, &e, false)))

			var ops []string
			j, err := OpenWithOptions(path, Options{WrapFile: func(f *os.File) File {
				return &loggingFile{File: f, name: f.Name(), journal: path, ops: &ops}
			}})
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			sameEntries(t, "after repair", entries(t, j), want)
			if got := fileSize(t, path); got != good {
				t.Fatalf("journal is %d bytes after repair, want %d", got, good)
			}
			if want := []string{fmt.Sprintf("truncate journal to %d", good), "fsync journal"}; !reflect.DeepEqual(ops, want) {
				t.Fatalf("repair did %q, want %q", ops, want)
			}
			if err := j.MarkAppended(want[1].ID, 3, 4); err != nil {
				t.Fatal(err)
			}
			want = entries(t, j)
			j = reopen(t, j)
			sameEntries(t, "after append and reopen", entries(t, j), want)
		})
	}
}

func appendBytes(t testing.TB, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}

// TestHeader covers the first line: a new journal gets one, a header torn by
// a crash while creating the journal is rewritten, and a file that is not a
// journal, or a newer format, is left alone.
func TestHeader(t *testing.T) {
	tests := []struct {
		name    string
		content string
		corrupt bool   // want *CorruptError
		errText string // want an error containing this
	}{
		{"missing file", "", false, ""},
		{"empty file", "\x00", false, ""}, // "\x00" means create it empty
		{"torn header", "pop2imap-jour", false, ""},
		{"header only", header, false, ""},
		{"not a journal", "hello world\n", true, "not a pop2imap journal"},
		{"not a journal without newline", "#!/bin/sh", true, "not a pop2imap journal"},
		{"newer version", "pop2imap-journal 2\n", false, "version 2 is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := journalPath(t)
			if tt.content != "" {
				os.MkdirAll(filepath.Dir(path), 0o700)
				if err := os.WriteFile(path, []byte(strings.TrimPrefix(tt.content, "\x00")), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			j, err := Open(path)
			var ce *CorruptError
			if tt.corrupt != errors.As(err, &ce) {
				t.Fatalf("Open error = %v, want *CorruptError: %v", err, tt.corrupt)
			}
			if tt.errText != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errText) {
					t.Fatalf("Open error = %v, want one containing %q", err, tt.errText)
				}
				data, _ := os.ReadFile(path)
				if string(data) != tt.content {
					t.Fatalf("Open changed a file it refused: %q", data)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer j.Close()
			if data, _ := os.ReadFile(path); string(data) != header {
				t.Fatalf("journal = %q, want just the header", data)
			}
			begin(t, j, message(1))
		})
	}
}

// TestCorruptMiddle proves that damage anywhere but a torn tail is refused
// with the offset of the bad line, without touching the file.
func TestCorruptMiddle(t *testing.T) {
	stepRecord := func(id uint64, s Step) []byte {
		return appendRecord(nil, &Entry{ID: id, Step: s, Updated: time.Now().UTC()}, false)
	}
	tests := []struct {
		name   string
		damage func(lines [][]byte) [][]byte // lines[0] is the header
		line   int                           // index of the bad line afterwards
		reason string
	}{
		// A record that fails its checksum is salvaged, not refused:
		// see TestSalvageDamagedRecord.
		{"unknown id in the middle", func(l [][]byte) [][]byte {
			return insert(l, 2, stepRecord(77, Appended))
		}, 2, "unknown entry 77"},
		{"unknown id on the last line", func(l [][]byte) [][]byte {
			return append(l, stepRecord(77, Appended))
		}, 4, "unknown entry 77"},
		{"step not allowed", func(l [][]byte) [][]byte {
			return append(l, stepRecord(1, Refused))
		}, 4, "cannot go from appended to refused"},
		{"entry created twice", func(l [][]byte) [][]byte {
			return append(l, bytes.Clone(l[1]))
		}, 4, "created again"},
		{"valid checksum, bad JSON", func(l [][]byte) [][]byte {
			return insert(l, 1, withCRC(`{"i":1,"s":`))
		}, 1, "bad record"},
		{"valid checksum, unknown step", func(l [][]byte) [][]byte {
			return insert(l, 1, withCRC(`{"i":1,"s":"lost"}`))
		}, 1, `unknown step "lost"`},
		{"valid checksum, short hash", func(l [][]byte) [][]byte {
			return insert(l, 1, withCRC(`{"i":1,"s":"appending","u":"x","h":"00","n":"00"}`))
		}, 1, "not 64 hex digits"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := journalPath(t)
			j := mustOpen(t, path)
			id := begin(t, j, message(1))
			if err := j.MarkAppended(id, 1, 1); err != nil {
				t.Fatal(err)
			}
			begin(t, j, message(2))
			j.Close()
			data, _ := os.ReadFile(path)
			lines := bytes.SplitAfter(data, []byte("\n"))
			lines = tt.damage(lines[:len(lines)-1])
			data = bytes.Join(lines, nil)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			wantOff := int64(len(bytes.Join(lines[:tt.line], nil)))

			_, err := Open(path)
			var ce *CorruptError
			if !errors.As(err, &ce) {
				t.Fatalf("Open error = %v, want *CorruptError", err)
			}
			if ce.Path != path || ce.Offset != wantOff {
				t.Fatalf("CorruptError at %s byte %d, want %s byte %d", ce.Path, ce.Offset, path, wantOff)
			}
			msg := err.Error()
			for _, want := range []string{path, fmt.Sprintf("at byte %d", wantOff), tt.reason, "move it aside"} {
				if !strings.Contains(msg, want) {
					t.Errorf("error %q does not contain %q", msg, want)
				}
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, data) {
				t.Fatal("Open changed a corrupt journal")
			}
			// The lock was released: a second try fails the same way, not with *LockedError.
			if _, err := Open(path); !errors.As(err, &ce) {
				t.Fatalf("second Open error = %v, want *CorruptError", err)
			}
		})
	}
}

func insert(lines [][]byte, at int, line []byte) [][]byte {
	return append(lines[:at], append([][]byte{line}, lines[at:]...)...)
}

func withCRC(js string) []byte {
	var b [8]byte
	hexCRC(b[:], crc32c([]byte(js)))
	return []byte(string(b[:]) + " " + js + "\n")
}

// TestCompaction proves that Open compacts exactly when superseded records
// outnumber live entries, and that compaction keeps every entry as it was.
func TestCompaction(t *testing.T) {
	const n = 20
	tests := []struct {
		name        string
		appended    int // of n entries, how many get MarkAppended
		deleted     int // of those, how many get MarkDeleted
		refused     int // of the rest, how many get MarkRefused
		wantCompact bool
	}{
		{"only appending", 0, 0, 0, false},
		{"dead fewer than live", n / 2, 0, 0, false},
		{"dead equal to live", n, 0, 0, false},
		{"dead just more than live", n, 1, 0, true},
		{"everything deleted", n, n, 0, true},
		{"refusals and deletions", n / 2, n / 2, n / 2, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := journalPath(t)
			j := mustOpen(t, path)
			var ids []uint64
			for i := range n {
				ids = append(ids, begin(t, j, message(i)))
			}
			for _, id := range ids[:tt.appended] {
				if err := j.MarkAppended(id, 9, uint32(id)); err != nil {
					t.Fatal(err)
				}
			}
			if err := j.MarkDeleted(ids[:tt.deleted]); err != nil {
				t.Fatal(err)
			}
			for _, id := range ids[tt.appended : tt.appended+tt.refused] {
				if err := j.MarkRefused(id, fmt.Sprintf("no %d", id)); err != nil {
					t.Fatal(err)
				}
			}
			want := entries(t, j)
			j.Close()
			before, _ := os.ReadFile(path)

			j = mustOpen(t, path)
			defer j.Close()
			sameEntries(t, "after Open", entries(t, j), want)
			after, _ := os.ReadFile(path)
			compacted := !bytes.Equal(before, after)
			if compacted != tt.wantCompact {
				t.Fatalf("compacted = %v, want %v (%d records, %d entries)", compacted, tt.wantCompact, countLines(t, path)-1, n)
			}
			if compacted {
				if lines := countLines(t, path); lines != n+1 {
					t.Fatalf("compacted journal has %d lines, want header + %d", lines, n)
				}
				checkMode(t, path, 0o600)
			}
			if names, _ := filepath.Glob(path + compactSuffix + "*"); len(names) > 0 {
				t.Fatalf("temporary files left: %v", names)
			}
			// The lock survives compaction replacing the file.
			if _, err := Open(path); !isLocked(err) {
				t.Fatalf("second Open after compaction: %v, want *LockedError", err)
			}
			// The compacted journal is appendable and replays the same.
			id := begin(t, j, message(n))
			if err := j.MarkRefused(id, "late"); err != nil {
				t.Fatal(err)
			}
			want = entries(t, j)
			j = reopen(t, j)
			sameEntries(t, "after append and reopen", entries(t, j), want)
		})
	}
}

func isLocked(err error) bool {
	var le *LockedError
	return errors.As(err, &le)
}

// TestCompactionIsDurable proves the order that makes compaction crash-safe:
// the temporary file is fsync'd before it replaces the journal, and the
// directory is fsync'd after the rename.
func TestCompactionIsDurable(t *testing.T) {
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
	j.Close() // 9 records, 3 entries

	var ops []string
	j, err := OpenWithOptions(path, Options{WrapFile: func(f *os.File) File {
		return &loggingFile{File: f, name: f.Name(), journal: path, ops: &ops}
	}})
	if err != nil {
		t.Fatal(err)
	}
	j.Close()
	want := []string{"write tmp", "fsync tmp", "fsync dir while the journal has 4 lines"}
	if !reflect.DeepEqual(ops, want) {
		t.Fatalf("compaction did %q, want %q", ops, want)
	}
}

// loggingFile logs writes and fsyncs; a directory fsync logs how many lines
// the journal has at that moment.
type loggingFile struct {
	File
	name, journal string
	ops           *[]string
}

func (l *loggingFile) kind() string {
	switch {
	case l.name == l.journal:
		return "journal"
	case strings.HasPrefix(l.name, l.journal+compactSuffix):
		return "tmp"
	}
	data, _ := os.ReadFile(l.journal)
	return fmt.Sprintf("dir while the journal has %d lines", bytes.Count(data, []byte("\n")))
}

func (l *loggingFile) Write(p []byte) (int, error) {
	*l.ops = append(*l.ops, "write "+l.kind())
	return l.File.Write(p)
}

func (l *loggingFile) Truncate(size int64) error {
	*l.ops = append(*l.ops, fmt.Sprintf("truncate %s to %d", l.kind(), size))
	return l.File.Truncate(size)
}

func (l *loggingFile) Sync() error {
	*l.ops = append(*l.ops, "fsync "+l.kind())
	return l.File.Sync()
}

// TestStaleCompactionFileRemoved proves that the temporary files left by
// a crash during compaction, or while the index was created, are removed,
// and the journal is used as it is.
func TestStaleCompactionFileRemoved(t *testing.T) {
	path := journalPath(t)
	j := mustOpen(t, path)
	begin(t, j, message(1))
	want := entries(t, j)
	j.Close()
	stale := path + compactSuffix
	if err := os.WriteFile(stale, []byte(header+"half"), 0o600); err != nil {
		t.Fatal(err)
	}
	staleIndex := path + indexSuffix // a crash between creating and unlinking
	if err := os.WriteFile(staleIndex, make([]byte, 4096), 0o600); err != nil {
		t.Fatal(err)
	}
	j = mustOpen(t, path)
	defer j.Close()
	for _, name := range []string{stale, staleIndex} {
		if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("stale temporary file %s still there: %v", name, err)
		}
	}
	sameEntries(t, "entries", entries(t, j), want)
}

func checkMode(t testing.TB, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s has mode %v, want %v", path, got, want)
	}
}

// TestFileModes proves that the journal and its lock are private to the
// user, and the directories created for them too.
func TestFileModes(t *testing.T) {
	path := journalPath(t)
	j := mustOpen(t, path)
	defer j.Close()
	checkMode(t, path, 0o600)
	checkMode(t, path+".lock", 0o600)
	checkMode(t, filepath.Dir(path), 0o700)
	checkMode(t, filepath.Dir(filepath.Dir(path)), 0o700)
}

// TestExistingJournalMadePrivate: a journal left readable by others (by an
// older version, or a copy) is made 0600 when opened.
func TestExistingJournalMadePrivate(t *testing.T) {
	path := journalPath(t)
	j := mustOpen(t, path)
	begin(t, j, message(1))
	j.Close()
	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	j = mustOpen(t, path)
	defer j.Close()
	checkMode(t, path, 0o600)
}

// TestJournalSymlinkRefused: the journal and its lock are not opened
// through a symbolic link, which could point the writes at another file.
func TestJournalSymlinkRefused(t *testing.T) {
	for _, which := range []string{"journal", "lock"} {
		t.Run(which, func(t *testing.T) {
			path := journalPath(t)
			os.MkdirAll(filepath.Dir(path), 0o700)
			victim := filepath.Join(t.TempDir(), "victim")
			os.WriteFile(victim, []byte("keep\n"), 0o600)
			link := path
			if which == "lock" {
				link = path + ".lock"
			}
			if err := os.Symlink(victim, link); err != nil {
				t.Fatal(err)
			}
			j, err := Open(path)
			if err == nil {
				j.Close()
				t.Fatalf("Open followed the symbolic link %s", link)
			}
			if b, _ := os.ReadFile(victim); string(b) != "keep\n" {
				t.Errorf("the link's target was changed to %q", b)
			}
		})
	}
}

// TestLockSameProcess proves that a journal cannot be opened twice at once,
// and can be opened again after Close.
func TestLockSameProcess(t *testing.T) {
	path := journalPath(t)
	j := mustOpen(t, path)
	_, err := Open(path)
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("second Open error = %v, want *LockedError", err)
	}
	want := "state: journal " + path + " is in use by another pop2imap run (lock held on " + path + ".lock); wait for it to finish or stop it"
	if le.Path != path || err.Error() != want {
		t.Fatalf("LockedError = %q, want %q", err, want)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := j.BeginAppend(message(1)); err == nil || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("BeginAppend after Close: %v, want an error saying it is closed", err)
	}
	j = mustOpen(t, path)
	j.Close()
}

// TestLockAcrossProcesses proves that the lock keeps out another process,
// and is released when that process ends.
func TestLockAcrossProcesses(t *testing.T) {
	path := journalPath(t)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), holdLockEnv+"="+path)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	if _, err := Open(path); !isLocked(err) {
		t.Fatalf("Open while another process holds the journal: %v, want *LockedError", err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	j := mustOpen(t, path)
	j.Close()
}

// TestMarkDeletedBatch proves that MarkDeleted writes all its records with
// one write and one fsync.
func TestMarkDeletedBatch(t *testing.T) {
	path := journalPath(t)
	j, cf := openCounting(t, path)
	defer j.Close()
	var ids []uint64
	for i := range 5 {
		id := begin(t, j, message(i))
		if err := j.MarkAppended(id, 1, uint32(i)); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	cf.writes, cf.syncs, cf.bytes = 0, 0, 0
	if err := j.MarkDeleted(ids); err != nil {
		t.Fatal(err)
	}
	if cf.writes != 1 || cf.syncs != 1 {
		t.Fatalf("MarkDeleted of %d entries made %d writes and %d fsyncs, want 1 and 1", len(ids), cf.writes, cf.syncs)
	}
	if err := j.MarkDeleted(nil); err != nil || cf.syncs != 1 {
		t.Fatalf("MarkDeleted(nil) = %v with %d fsyncs, want nothing done", err, cf.syncs)
	}
	for _, e := range entries(t, j) {
		if e.Step != Deleted {
			t.Fatalf("entry %d is %s after MarkDeleted", e.ID, e.Step)
		}
	}
	want := entries(t, j)
	j = reopen(t, j)
	defer j.Close()
	sameEntries(t, "after reopen", entries(t, j), want)
}

// countingFile counts a journal file's writes and fsyncs, and fails the
// fsyncs while failSync is set.
type countingFile struct {
	File
	writes, syncs, bytes int
	failSync             error
}

func (c *countingFile) Write(p []byte) (int, error) {
	c.writes++
	c.bytes += len(p)
	return c.File.Write(p)
}

// openCounting opens the journal at path with its file counted.
func openCounting(t *testing.T, path string) (*Journal, *countingFile) {
	t.Helper()
	var cf *countingFile
	j, err := OpenWithOptions(path, Options{WrapFile: func(f *os.File) File {
		if f.Name() != path {
			return f
		}
		cf = &countingFile{File: f}
		return cf
	}})
	if err != nil {
		t.Fatal(err)
	}
	return j, cf
}

func (c *countingFile) Sync() error {
	c.syncs++
	if c.failSync != nil {
		return c.failSync
	}
	return c.File.Sync()
}

// TestGrowthIsLinear proves that recording a message costs the same number of
// bytes however long the journal already is: the file is appended to, never
// rewritten.
func TestGrowthIsLinear(t *testing.T) {
	const n = 100
	path := journalPath(t)
	j, cf := openCounting(t, path)
	defer j.Close()
	var perMessage []int
	record := func(i int) {
		start, syncs := cf.bytes, cf.syncs
		id := begin(t, j, message(i))
		if cf.syncs != syncs+1 {
			t.Fatalf("BeginAppend made %d fsyncs, want 1", cf.syncs-syncs)
		}
		if err := j.MarkAppended(id, 1, uint32(i)); err != nil {
			t.Fatal(err)
		}
		if cf.syncs != syncs+2 {
			t.Fatalf("MarkAppended made %d fsyncs, want 1", cf.syncs-syncs-1)
		}
		perMessage = append(perMessage, cf.bytes-start)
	}
	for i := range n {
		record(i)
	}
	size1 := fileSize(t, path) - int64(len(header))
	for i := n; i < 2*n; i++ {
		record(i)
	}
	size2 := fileSize(t, path) - int64(len(header))
	if ratio := float64(size2) / float64(size1); ratio < 1.95 || ratio > 2.05 {
		t.Fatalf("journal holds %d bytes after %d messages and %d after %d: ratio %.3f, want 2", size1, n, size2, 2*n, ratio)
	}
	first, last := perMessage[0], perMessage[len(perMessage)-1]
	if last > first+16 {
		t.Fatalf("message 1 wrote %d bytes, message %d wrote %d", first, 2*n, last)
	}
	t.Logf("%d bytes on disk per message (BeginAppend + MarkAppended)", size2/(2*n))
}

// TestConcurrentUse proves the journal is safe for concurrent use (run with
// -race).
func TestConcurrentUse(t *testing.T) {
	j := mustOpen(t, journalPath(t))
	defer j.Close()
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 5 {
				id := begin(t, j, message(g*10+i))
				if err := j.MarkAppended(id, 1, uint32(id)); err != nil {
					t.Error(err)
				}
				entries(t, j)
				byUIDL(t, j, message(i).UIDL)
			}
		})
	}
	wg.Wait()
	entries := entries(t, j)
	if len(entries) != 20 {
		t.Fatalf("%d entries, want 20", len(entries))
	}
	for i, e := range entries {
		if e.ID != uint64(i+1) || e.Step != Appended {
			t.Fatalf("entry %d = %+v", i, e)
		}
	}
}
