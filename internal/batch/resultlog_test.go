package batch

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/errkind"
)

// result returns a Result of account id that ended at minute end.
func result(id string, status Status, end int) Result {
	t0 := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	return Result{Account: "acct-" + id, ID: id, Start: t0, End: t0.Add(time.Duration(end) * time.Minute),
		Status: status, Listed: 10, Appended: 7, Bytes: 1234}
}

// jsonOf is the JSON of v, to compare Results whatever their time zones.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeResults opens the log of shard in dir, writes rs and closes it.
func writeResults(t *testing.T, dir string, shard Shard, rs ...Result) {
	t.Helper()
	l, err := OpenLog(dir, shard)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := l.Write(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// readResults is ReadResults that expects no error.
func readResults(t *testing.T, dir string) ([]Result, int) {
	t.Helper()
	rs, torn, err := ReadResults(dir)
	if err != nil {
		t.Fatal(err)
	}
	return rs, torn
}

// TestLogRoundTrip proves that what Log writes ReadResults reads back, in
// a private file of whole JSON lines, created with its directory.
func TestLogRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	want := []Result{result("a", Done, 1), result("b", Failed, 2), result("c", LeftBehind, 3)}
	want[1].Kind, want[1].Error = "auth", "imap: login refused:\nline two" // a newline must stay inside the line
	writeResults(t, dir, Shard{}, want[:2]...)
	writeResults(t, dir, Shard{}, want[2]) // a rerun appends
	got, torn := readResults(t, dir)
	if torn != 0 || jsonOf(t, got) != jsonOf(t, want) {
		t.Fatalf("read back %s (torn %d)\nwant %s", jsonOf(t, got), torn, jsonOf(t, want))
	}
	path := filepath.Join(dir, "results.jsonl")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Errorf("state directory mode %04o, want 0700", di.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n"); len(lines) != 3 || !strings.HasSuffix(string(b), "\n") {
		t.Errorf("the file is not three whole lines:\n%s", b)
	}
}

// TestLogShardFiles proves that each shard writes its own file, named by
// the shard, and that ReadResults reads them all.
func TestLogShardFiles(t *testing.T) {
	dir := t.TempDir()
	writeResults(t, dir, Shard{0, 3}, result("a", Done, 1))
	writeResults(t, dir, Shard{2, 3}, result("b", Done, 1))
	writeResults(t, dir, Shard{}, result("c", Done, 1))
	os.WriteFile(filepath.Join(dir, "notes.txt"), []byte("not a log\n"), 0o600)
	os.Mkdir(filepath.Join(dir, "journals"), 0o700)
	for _, name := range []string{"results-0-of-3.jsonl", "results-2-of-3.jsonl", "results.jsonl"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("no %s: %v", name, err)
		}
	}
	got, _ := readResults(t, dir)
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	if fmt.Sprint(ids) != "[a b c]" {
		t.Errorf("read %v, want [a b c] (in the order of the files' names)", ids)
	}
}

// TestLogTornLastLine proves that a line cut short by a crash is skipped
// and counted by ReadResults, and cut off by the next OpenLog so that the
// lines written after it stay whole.
func TestLogTornLastLine(t *testing.T) {
	dir := t.TempDir()
	writeResults(t, dir, Shard{}, result("a", Done, 1), result("b", Failed, 2))
	path := filepath.Join(dir, "results.jsonl")
	whole, _ := os.ReadFile(path)
	line := jsonOf(t, result("c", Done, 3)) + "\n"
	for _, cut := range []int{1, len(line) / 2, len(line) - 1} { // a torn write ends anywhere before its newline
		os.WriteFile(path, append(append([]byte{}, whole...), line[:cut]...), 0o600)
		got, torn := readResults(t, dir)
		if torn != 1 || len(got) != 2 {
			t.Fatalf("cut at %d: read %d results, %d torn; want 2 and 1", cut, len(got), torn)
		}
		writeResults(t, dir, Shard{}, result("d", Done, 4))
		got, torn = readResults(t, dir)
		if torn != 0 || len(got) != 3 || got[2].ID != "d" {
			t.Fatalf("cut at %d, then a rerun: read %s, %d torn; want a, b, d and none torn", cut, jsonOf(t, got), torn)
		}
	}
}

// TestReadResultsDamage proves that a damaged line that is not the last
// is an error naming its file and line, not skipped.
func TestReadResultsDamage(t *testing.T) {
	good := jsonOf(t, result("a", Done, 1)) + "\n"
	for _, tt := range []struct {
		name, content string
		line          int
		want          string
	}{
		{"garbage", good + "garbage\n" + good, 2, "invalid character"},
		{"torn line in the middle", good + good[:20] + "\n" + good, 2, "unexpected end"},
		{"no id", good + good + "{\"status\":\"done\"}\n", 3, "without an account id"},
		{"not an object", "[1,2]\n", 1, "cannot unmarshal"},
		{"too long", good + strings.Repeat("x", maxResultLine+10) + "\n", 2, "longer than"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "results-1-of-2.jsonl")
			os.WriteFile(path, []byte(tt.content), 0o600)
			_, _, err := ReadResults(dir)
			var rerr *ResultsError
			if !errors.As(err, &rerr) || rerr.Path != path || rerr.Line != tt.line {
				t.Fatalf("got %v; want a *ResultsError at %s:%d", err, path, tt.line)
			}
			if want := fmt.Sprintf("%s:%d: ", path, tt.line); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("%q does not name %s or say %q", err, want, tt.want)
			}
			if errkind.Of(err) != errkind.Journal {
				t.Errorf("kind %q, want journal", errkind.Of(err))
			}
		})
	}
}

// TestReadResultsEmpty: a state directory that does not exist yet, or has
// no log, holds no results; blank lines are no results either.
func TestReadResultsEmpty(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{filepath.Join(dir, "missing"), dir} {
		if rs, torn := readResults(t, d); len(rs) != 0 || torn != 0 {
			t.Errorf("%s: %d results, %d torn", d, len(rs), torn)
		}
	}
	os.WriteFile(filepath.Join(dir, "results.jsonl"), []byte("\n\n"), 0o600)
	if rs, torn := readResults(t, dir); len(rs) != 0 || torn != 0 {
		t.Errorf("blank lines: %d results, %d torn", len(rs), torn)
	}
}

// TestOpenLogRefusesSymlink proves that the log is never written through
// a symbolic link, which could point at another of the user's files.
func TestOpenLogRefusesSymlink(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "victim")
	os.WriteFile(target, []byte("precious\n"), 0o600)
	if err := os.Symlink(target, filepath.Join(dir, "results.jsonl")); err != nil {
		t.Skip(err)
	}
	l, err := OpenLog(dir, Shard{})
	if err == nil {
		l.Close()
		t.Fatal("OpenLog followed a symbolic link")
	}
	var lerr *LogError
	if !errors.As(err, &lerr) {
		t.Errorf("got %v; want a *LogError", err)
	}
	if b, _ := os.ReadFile(target); string(b) != "precious\n" {
		t.Errorf("the link's target was changed: %q", b)
	}
}

// TestLogMakesPrivate: a log made readable by others (copied in, or by an
// older version) is made private again when opened.
func TestLogMakesPrivate(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "results.jsonl")
	os.WriteFile(path, nil, 0o644)
	os.Chmod(path, 0o644)
	writeResults(t, dir, Shard{}, result("a", Done, 1))
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode %04o, want 0600", fi.Mode().Perm())
	}
}

// TestLogConcurrentWrites proves that writes from many goroutines land as
// whole lines, none lost.
func TestLogConcurrentWrites(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLog(dir, Shard{})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 25 {
				r := result(fmt.Sprintf("g%d-%d", g, i), Done, i)
				r.Error = strings.Repeat("e", 3000) // lines of many KiB interleave if a write is split
				if err := l.Write(r); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	l.Close()
	got, torn := readResults(t, dir)
	seen := map[string]bool{}
	for _, r := range got {
		seen[r.ID] = true
	}
	if torn != 0 || len(got) != 200 || len(seen) != 200 {
		t.Errorf("read %d results (%d distinct, %d torn); want 200", len(got), len(seen), torn)
	}
	if err := l.Write(result("late", Done, 1)); err == nil {
		t.Error("Write after Close succeeded")
	}
}

// TestReadLatest: the streaming read gives what Latest gives from every
// result, over two shards' logs, repeated attempts, ties and a torn last
// line.
func TestReadLatest(t *testing.T) {
	dir := t.TempDir()
	tieA, tieB := result("b", Failed, 5), result("b", Done, 5)
	writeResults(t, dir, Shard{}, result("a", Failed, 1), result("b", Done, 2), tieA, result("c", LeftBehind, 9))
	writeResults(t, dir, Shard{Index: 1, Count: 2}, result("a", Done, 4), result("c", Failed, 3), tieB, result("d", Done, 1))
	f, err := os.OpenFile(filepath.Join(dir, LogName(Shard{})), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"account":"acct-a","id":"a"`) // torn: no newline
	f.Close()

	all, torn := readResults(t, dir)
	got, gotTorn, err := ReadLatest(dir)
	if err != nil {
		t.Fatal(err)
	}
	if want := Latest(all); jsonOf(t, got) != jsonOf(t, want) || gotTorn != torn || torn != 1 {
		t.Fatalf("ReadLatest = %s (torn %d)\nLatest(ReadResults) = %s (torn %d)", jsonOf(t, got), gotTorn, jsonOf(t, want), torn)
	}
	// b's two attempts ended at once: the one read later wins, and
	// results.jsonl sorts after results-1-of-2.jsonl.
	if got["a"].Status != Done || got["b"].Status != tieA.Status || got["c"].Status != LeftBehind || len(got) != 4 {
		t.Fatalf("latest attempts: %s", jsonOf(t, got))
	}
	if m, _, err := ReadLatest(filepath.Join(dir, "missing")); err != nil || len(m) != 0 {
		t.Fatalf("a state directory not made yet: %v, %v", m, err)
	}
}
