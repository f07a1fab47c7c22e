package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pop2imap/pop2imap/internal/batch"
	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/internal/testservers"
)

// batchFixture is n accounts, each with a POP3 and an IMAP server of its
// own (in-process), and an accounts file for them.
type batchFixture struct {
	pairs    []*testservers.Pair
	csv, dir string
}

func newBatchFixture(t *testing.T, n, perAccount int) *batchFixture {
	t.Helper()
	f := &batchFixture{dir: t.TempDir()}
	var b strings.Builder
	// Columns in another order than the README's, as a spreadsheet may
	// export them.
	b.WriteString("imap_password,imap_user,imap_server,pop3_password,pop3_user,pop3_server,name,pop3_tls,imap_tls\n")
	for i := 0; i < n; i++ {
		p := testservers.Start(t, testservers.Config{
			POP3:     pop3test.Config{Username: "u", Password: "pop-Pass-7q"},
			IMAPUser: "i", IMAPPassword: "imap-Pass-8r"})
		for k := 0; k < perAccount; k++ {
			p.POP3.AddMessage(fmt.Sprintf("m%d", k), []byte(fmt.Sprintf("Subject: %d of account %d\r\n\r\nbody\r\n", k, i)))
		}
		f.pairs = append(f.pairs, p)
		fmt.Fprintf(&b, "imap-Pass-8r,i,%s,\"pop-Pass-7q\",u,%s,acct-%02d,none,none\n", p.IMAP.Addr(), p.POP3.Addr(), i)
	}
	f.csv = filepath.Join(f.dir, "accounts.csv")
	if err := os.WriteFile(f.csv, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

// TestBatchShardsAndReport runs a batch as three shards, one after the
// other on one state directory: together they move every account once,
// each shard writes its own results file, and `batch report` merges them
// into one summary, one JSON report and one HTML page, none of which holds
// a password.
func TestBatchShardsAndReport(t *testing.T) {
	f := newBatchFixture(t, 9, 2)
	state := filepath.Join(f.dir, "state")
	ran := 0
	for i := 0; i < 3; i++ {
		args := []string{"batch", "--accounts", f.csv, "--state-dir", state, "--shard", fmt.Sprintf("%d/3", i), "--progress", "never"}
		if i == 1 {
			args = append(args, "--estimate=false") // the display works without totals
		}
		code, stdout, stderr := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("shard %d exited %d\n%s\n%s", i, code, stdout, stderr)
		}
		var n int
		fmt.Sscanf(stdout, "%d accounts:", &n)
		ran += n
		if strings.Contains(stdout+stderr, "Pass-") {
			t.Error("a password in the output")
		}
	}
	if ran != 9 {
		t.Errorf("the shards ran %d accounts between them, want 9", ran)
	}
	for i, p := range f.pairs {
		if got := len(p.IMAP.Messages("INBOX")); got != 2 {
			t.Errorf("account %d: %d messages in the folder, want 2", i, got)
		}
	}
	logs, _ := filepath.Glob(filepath.Join(state, "results*.jsonl"))
	if len(logs) != 3 {
		t.Errorf("results files: %v, want one per shard", logs)
	}

	report, html := filepath.Join(f.dir, "r.json"), filepath.Join(f.dir, "r.html")
	code, stdout, stderr := runCLI(t, "batch", "report", "--state-dir", state, "--accounts", f.csv, "--report", report, "--html", html)
	if code != 0 || !strings.HasPrefix(stdout, "9 accounts: 9 done, 0 left messages behind, 0 failed, 0 never attempted; 18 messages") {
		t.Fatalf("batch report exited %d:\n%s%s", code, stdout, stderr)
	}
	var s batch.Summary
	b, _ := os.ReadFile(report)
	if err := json.Unmarshal(b, &s); err != nil || s.Done != 9 || s.Appended != 18 || len(s.Accounts) != 9 {
		t.Errorf("report: %v %+v", err, s)
	}
	page, _ := os.ReadFile(html)
	for _, want := range []string{"<html", "acct-00", "acct-08"} {
		if !strings.Contains(string(page), want) {
			t.Errorf("the HTML report lacks %q", want)
		}
	}
	for _, file := range append(logs, report, html) {
		if b, _ := os.ReadFile(file); strings.Contains(string(b), "Pass-") {
			t.Errorf("%s holds a password", file)
		}
	}
}

// TestBatchInputErrors: nothing runs until the whole file is valid, and
// each mistake is one clear error with exit 2.
func TestBatchInputErrors(t *testing.T) {
	f := newBatchFixture(t, 2, 1)
	state := filepath.Join(f.dir, "state")
	text, _ := os.ReadFile(f.csv)
	lines := strings.Split(strings.TrimSpace(string(text)), "\n")

	bad := filepath.Join(f.dir, "bad.csv")
	os.WriteFile(bad, []byte(lines[0]+"\n"+lines[1]+"\n"+strings.Replace(lines[2], ",none,none", ",none,startls", 1)+"\n"), 0o600)
	code, _, stderr := runCLI(t, "batch", "--accounts", bad, "--state-dir", state)
	if code != 2 || !strings.Contains(stderr, "bad.csv:3") || !strings.Contains(stderr, "imap_tls") {
		t.Errorf("a bad cell: exit %d, %s", code, stderr)
	}
	dup := filepath.Join(f.dir, "dup.csv")
	os.WriteFile(dup, []byte(lines[0]+"\n"+lines[1]+"\n"+lines[1]+"\n"), 0o600)
	if code, _, stderr := runCLI(t, "batch", "--accounts", dup, "--state-dir", state); code != 2 || !strings.Contains(stderr, "2") || !strings.Contains(stderr, "3") {
		t.Errorf("a duplicate row: exit %d, %s", code, stderr)
	}
	os.Chmod(f.csv, 0o644)
	if code, _, stderr := runCLI(t, "batch", "--accounts", f.csv, "--state-dir", state); code != 2 || !strings.Contains(stderr, "chmod 600") {
		t.Errorf("a readable file: exit %d, %s", code, stderr)
	}
	os.Chmod(f.csv, 0o600)
	for _, args := range [][]string{
		{"--shard", "3/3"}, {"--only", "broken"}, {"--jobs", "0"}, {"--max-conns-per-host", "2"},
	} {
		code, _, stderr := runCLI(t, append([]string{"batch", "--accounts", f.csv, "--state-dir", state}, args...)...)
		if code != 2 || strings.Count(strings.TrimSpace(stderr), "\n") != 0 {
			t.Errorf("%v: exit %d, %q", args, code, stderr)
		}
	}
	if _, err := os.Stat(state); err == nil {
		t.Error("a batch that never ran made its state directory")
	}
	for i, p := range f.pairs {
		if got := len(p.IMAP.Messages("INBOX")); got != 0 {
			t.Errorf("account %d: copied %d messages though the input was refused", i, got)
		}
	}
}
