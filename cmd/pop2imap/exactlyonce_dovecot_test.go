package main

import (
	"bufio"
	"bytes"
	"fmt"
	"hash/crc32"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pop2imap/pop2imap/internal/dovecottest"
)

// These tests reproduce, against Dovecot, every way a user was able to store
// duplicates by losing, damaging or not finding the journal (issue 12). Each
// ends with every served message in the folder exactly once: the folder,
// not the journal, is the ground truth.

// exactlyOnce is one source mailbox and one target account on a shared
// Dovecot, with the built binary.
type exactlyOnce struct {
	t        *testing.T
	d        *dovecottest.Server
	bin      string
	src, dst string
	served   [][]byte
	dir      string
}

func newExactlyOnce(t *testing.T, d *dovecottest.Server, bin, name string, corpus [][]byte) *exactlyOnce {
	x := &exactlyOnce{t: t, d: d, bin: bin, src: name + "-src", dst: name + "-dst", dir: t.TempDir()}
	d.AddUser(t, x.src, "pop-"+x.src)
	d.AddUser(t, x.dst, "imap-"+x.dst)
	d.SeedMaildrop(t, x.src, corpus)
	x.served = d.RetrAll(t, x.src, "pop-"+x.src)
	return x
}

// args gives the connection flags over plain text by default.
func (x *exactlyOnce) args(extra ...string) []string {
	return append([]string{"migrate",
		"--pop3", x.d.POP3Addr, "--pop3-user", x.src, "--pop3-tls", "none",
		"--imap", x.d.IMAPAddr, "--imap-user", x.dst, "--imap-tls", "none",
		"--ca-file", x.d.CAFile, "--progress", "never"}, extra...)
}

func (x *exactlyOnce) command(args []string) *exec.Cmd {
	cmd := exec.Command(x.bin, args...)
	cmd.Env = append(os.Environ(), "POP2IMAP_POP3_PASSWORD=pop-"+x.src, "POP2IMAP_IMAP_PASSWORD=imap-"+x.dst,
		"XDG_STATE_HOME="+x.dir, "HOME="+x.dir)
	return cmd
}

// run runs the binary with args and returns its output and exit code.
func (x *exactlyOnce) run(args ...string) (string, int) {
	x.t.Helper()
	cmd := x.command(args)
	out, _ := cmd.CombinedOutput()
	return string(out), cmd.ProcessState.ExitCode()
}

// mustRun is run that fails the test unless the exit code is 0.
func (x *exactlyOnce) mustRun(args ...string) string {
	x.t.Helper()
	out, code := x.run(args...)
	if code != 0 {
		x.t.Fatalf("pop2imap %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// checkOnce fails the test unless folder holds every served message exactly
// once, byte for byte, and nothing else.
func (x *exactlyOnce) checkOnce(folder string) {
	x.t.Helper()
	got := x.d.FetchAll(x.t, x.dst, "imap-"+x.dst, folder)
	if missing, extra := sameMultiset(got, x.served); missing != 0 || extra != 0 {
		x.t.Fatalf("folder %q holds %d messages for %d served: %d missing or altered, %d extra (duplicates)",
			folder, len(got), len(x.served), missing, extra)
	}
}

var summaryCount = regexp.MustCompile(`(?m)^\s+(Appended|Adopted|Recovered|Already done):\s+(\d+)$`)

// counts reads the summary rows of a migrate run.
func counts(out string) map[string]string {
	c := map[string]string{}
	for _, m := range summaryCount.FindAllStringSubmatch(out, -1) {
		c[m[1]] = m[2]
	}
	return c
}

func TestDovecotExactlyOnceWithoutJournal(t *testing.T) {
	d := dovecottest.Start(t)
	bin := buildBinary(t)
	corpus := integrationCorpus(t, 60)
	// Twins: byte-identical messages under different UIDLs must each
	// arrive once.
	twin := []byte("From: twin@example.org\r\nSubject: the same bytes twice\r\nMessage-ID: <twin@example.org>\r\n\r\nsame\r\n")
	corpus = append(corpus, twin, twin)

	t.Run("corrupt journal moved aside", func(t *testing.T) {
		x := newExactlyOnce(t, d, bin, "corrupt", corpus)
		state := filepath.Join(x.dir, "journal")
		x.mustRun(x.args("--state", state)...)
		// Build a journal Open refuses: a step record for an entry that
		// does not exist.
		f, err := os.OpenFile(state, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(withCRCLine(`{"i":99999,"s":"deleted","t":"2024-01-01T00:00:00Z"}`))
		f.Close()
		out, code := x.run(x.args("--state", state)...)
		if code == 0 || !strings.Contains(out, "move it aside") || !strings.Contains(out, "found in the folder") {
			t.Fatalf("a corrupt journal: exit %d, want an error with true advice\n%s", code, out)
		}
		if err := os.Rename(state, state+".old"); err != nil {
			t.Fatal(err)
		}
		out = x.mustRun(x.args("--state", state)...)
		if c := counts(out); c["Appended"] != "0" || c["Adopted"] != fmt.Sprint(len(x.served)) {
			t.Errorf("rerun after moving the journal aside: %v, want 0 appended, %d adopted\n%s", c, len(x.served), out)
		}
		x.checkOnce("INBOX")
	})

	t.Run("journal cut in half", func(t *testing.T) {
		x := newExactlyOnce(t, d, bin, "cut", corpus)
		state := filepath.Join(x.dir, "journal")
		x.mustRun(x.args("--state", state)...)
		fi, err := os.Stat(state)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(state, fi.Size()/2); err != nil {
			t.Fatal(err)
		}
		out := x.mustRun(x.args("--state", state)...)
		if !strings.Contains(out, "WARN") || !strings.Contains(out, state) || !strings.Contains(out, "at byte") {
			t.Errorf("a journal cut short was repaired silently:\n%s", out)
		}
		if c := counts(out); c["Appended"] != "0" || c["Adopted"] == "" {
			t.Errorf("rerun after the cut: %v, want nothing appended and the rest adopted\n%s", c, out)
		}
		x.checkOnce("INBOX")
	})

	t.Run("damaged record in the middle", func(t *testing.T) {
		x := newExactlyOnce(t, d, bin, "damaged", corpus)
		state := filepath.Join(x.dir, "journal")
		x.mustRun(x.args("--state", state)...)
		data, err := os.ReadFile(state)
		if err != nil {
			t.Fatal(err)
		}
		mid := bytes.IndexByte(data[len(data)/2:], '\n') + len(data)/2 + 5
		data[mid] ^= 0x01
		os.WriteFile(state, data, 0o600)
		out := x.mustRun(x.args("--state", state)...)
		if !strings.Contains(out, "WARN") || !strings.Contains(out, ".damaged-") {
			t.Errorf("a damaged record was not reported with the saved copy:\n%s", out)
		}
		x.checkOnce("INBOX")
	})

	t.Run("the same accounts written another way", func(t *testing.T) {
		x := newExactlyOnce(t, d, bin, "spelling", corpus)
		// The default journal path, spelled differently each time.
		x.mustRun(x.args("--limit", "20")...)
		localhost := strings.Replace(x.d.POP3Addr, "127.0.0.1", "localhost", 1)
		imapLocal := strings.Replace(x.d.IMAPAddr, "127.0.0.1", "localhost", 1)
		x.mustRun("migrate", "--pop3", localhost, "--pop3-user", x.src, "--pop3-tls", "none",
			"--imap", imapLocal, "--imap-user", x.dst, "--imap-tls", "none", "--progress", "never", "--limit", "40")
		x.mustRun(x.args("--folder", "Inbox")...)
		x.checkOnce("INBOX")
		// Implicit TLS, another default journal again.
		x.mustRun("migrate", "--pop3", x.d.POP3SAddr, "--pop3-user", x.src, "--pop3-tls", "implicit",
			"--imap", x.d.IMAPSAddr, "--imap-user", x.dst, "--imap-tls", "implicit", "--ca-file", x.d.CAFile,
			"--progress", "never", "--folder", "inbox")
		x.checkOnce("INBOX")
		// A new --state file.
		out := x.mustRun(x.args("--state", filepath.Join(x.dir, "new-journal"))...)
		if c := counts(out); c["Appended"] != "0" {
			t.Errorf("a new --state: %v, want nothing appended\n%s", c, out)
		}
		x.checkOnce("INBOX")
		// An empty folder name is a usage error, not INBOX.
		if out, code := x.run(x.args("--folder", "")...); code != exitUsage {
			t.Errorf("--folder '': exit %d, want %d\n%s", code, exitUsage, out)
		}
	})

	t.Run("journal of another folder", func(t *testing.T) {
		x := newExactlyOnce(t, d, bin, "uidvalidity", corpus)
		state := filepath.Join(x.dir, "journal")
		x.mustRun(x.args("--state", state, "--folder", "A")...)
		out := x.mustRun(x.args("--state", state, "--folder", "B")...)
		if !strings.Contains(out, "UIDVALIDITY") {
			t.Errorf("a journal of another folder was trusted without a word:\n%s", out)
		}
		x.checkOnce("A")
		x.checkOnce("B")
		// And back: folder A's copies are found, not made again.
		out = x.mustRun(x.args("--state", state, "--folder", "A")...)
		if c := counts(out); c["Appended"] != "0" {
			t.Errorf("back to folder A: %v, want nothing appended\n%s", c, out)
		}
		x.checkOnce("A")
	})

	t.Run("kill -9 while indexing", func(t *testing.T) {
		x := newExactlyOnce(t, d, bin, "kill", corpus)
		x.mustRun(x.args("--state", filepath.Join(x.dir, "first"), "--limit", "30")...)
		// A new journal, so that the folder is indexed; kill the run as
		// soon as it says it is indexing.
		state := filepath.Join(x.dir, "second")
		cmd := x.command(x.args("--state", state))
		stderr, err := cmd.StderrPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(stderr)
		killed := false
		for sc.Scan() {
			if !killed && strings.Contains(sc.Text(), "indexing the folder") {
				cmd.Process.Kill()
				killed = true
			}
		}
		cmd.Wait()
		if !killed {
			t.Fatal("the run never said it was indexing the folder")
		}
		x.mustRun(x.args("--state", state)...)
		x.checkOnce("INBOX")
	})
}

// TestDovecotVerifySeesDuplicates proves that verify marks a second copy
// '+', counts it, and exits 1, with and without --quick, and that twins
// (the same bytes under two UIDLs) are not taken for duplicates.
func TestDovecotVerifySeesDuplicates(t *testing.T) {
	d := dovecottest.Start(t)
	bin := buildBinary(t)
	twin := []byte("From: twin@example.org\r\nSubject: twins\r\nMessage-ID: <twin-v@example.org>\r\n\r\nsame\r\n")
	corpus := append(integrationCorpus(t, 10), twin, twin)
	x := newExactlyOnce(t, d, bin, "verify", corpus)
	state := filepath.Join(x.dir, "journal")
	x.mustRun(x.args("--state", state)...)
	verify := func(extra ...string) (string, int) {
		args := append([]string{"verify", "--pop3", x.d.POP3Addr, "--pop3-user", x.src, "--pop3-tls", "none",
			"--imap", x.d.IMAPAddr, "--imap-user", x.dst, "--imap-tls", "none", "--state", state}, extra...)
		return x.run(args...)
	}
	for _, quick := range [][]string{nil, {"--quick"}} {
		if out, code := verify(quick...); code != 0 || strings.Contains(out, "\n+") {
			t.Fatalf("verify %v of a clean folder: exit %d\n%s", quick, code, out)
		}
	}
	// Another client stores one message a second time.
	dup := x.served[len(x.served)-3] // has a Message-ID: generated message
	x.d.AppendTo(t, x.dst, "INBOX", [][]byte{dup})
	for _, quick := range [][]string{nil, {"--quick"}} {
		out, code := verify(quick...)
		if code != exitError {
			t.Errorf("verify %v with a duplicate: exit %d, want %d\n%s", quick, code, exitError, out)
		}
		if n := strings.Count(out, "\n+ "); n != 1 || !regexp.MustCompile(`Duplicates \(\+\):\s+1\n`).MatchString(out) {
			t.Errorf("verify %v: %d '+' lines, want 1, and the count in the summary\n%s", quick, n, out)
		}
	}
	report := filepath.Join(x.dir, "verify.json")
	verify("--report", report)
	data, err := os.ReadFile(report)
	if err != nil || !strings.Contains(string(data), `"duplicates": 1`) || !strings.Contains(string(data), `"mark": "+"`) {
		t.Errorf("verify --report does not count the duplicate (%v):\n%s", err, data)
	}
}

// withCRCLine frames a journal record as the state package writes it.
func withCRCLine(js string) []byte {
	sum := crc32.Checksum([]byte(js), crc32.MakeTable(crc32.Castagnoli))
	return []byte(fmt.Sprintf("%08x %s\n", sum, js))
}
