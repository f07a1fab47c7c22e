package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/demo"
	"github.com/pop2imap/pop2imap/internal/dovecottest"
	"github.com/pop2imap/pop2imap/internal/imaptest"
)

// countMarks counts verify's lines by their mark.
func countMarks(stdout string) map[byte]int {
	marks := map[byte]int{}
	for _, l := range strings.Split(stdout, "\n") {
		if len(l) > 2 && l[1] == ' ' && strings.IndexByte("=-*!", l[0]) >= 0 {
			marks[l[0]]++
		}
	}
	return marks
}

// imapSession logs in to an IMAP server and selects folder, for a test to
// change what is stored.
func imapSession(t *testing.T, ep *bridge.Endpoint, folder string) *imapclient.Client {
	t.Helper()
	c, err := bridge.DialIMAP(context.Background(), ep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	return c
}

// tamper replaces the stored message that contains alter with a copy that
// has one more header line, and deletes the one that contains remove.
func tamper(t *testing.T, c *imapclient.Client, folder, alter, remove string) {
	t.Helper()
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
		UID: true, BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var gone imap.UIDSet
	var altered []byte
	for _, m := range msgs {
		for _, body := range m.BodySection {
			switch {
			case bytes.Contains(body.Bytes, []byte(alter)):
				gone.AddNum(m.UID)
				altered = bytes.Replace(body.Bytes, []byte("\r\n\r\n"), []byte("\r\nX-Tampered: yes\r\n\r\n"), 1)
			case bytes.Contains(body.Bytes, []byte(remove)):
				gone.AddNum(m.UID)
			}
		}
	}
	if altered == nil || len(gone) == 0 {
		t.Fatalf("no stored message contains %q and %q", alter, remove)
	}
	cmd := c.Append(folder, int64(len(altered)), nil)
	cmd.Write(altered)
	cmd.Close()
	if _, err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(gone, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyCommand runs verify in-process after a migration: every
// message is '=' and the exit code 0, by bytes and with --quick; after one
// copy is altered and another deleted, it shows '*' and '-', exits 1 and
// says so in one line. verify creates no journal of its own.
func TestVerifyCommand(t *testing.T) {
	// verify without --state uses the default journal path; keep it out of
	// the real home directory.
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("XDG_STATE_HOME", t.TempDir())
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	pop, im := startServers(t)
	mail, err := demo.SampleMail()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range mail {
		// imapmemserver serves an empty message back as CRLF, which
		// verify would rightly call different.
		if len(m) > 0 {
			pop.AddMessage(fmt.Sprintf("uidl-%02d", n), m)
			n++
		}
	}
	conn := []string{"--pop3", pop.Addr(), "--pop3-tls", "none", "--pop3-user", "alice",
		"--imap", im.Addr(), "--imap-tls", "none", "--imap-user", "alice@example.com", "--folder", "Archive"}

	code, stdout, stderr := runCLI(t, append([]string{"verify"}, conn...)...)
	if code != exitError || countMarks(stdout)['-'] != n || !strings.Contains(stdout, "does not exist") {
		t.Fatalf("verify before migrating: exit %d, want %d with %d '-' lines and a missing folder\n%s%s", code, exitError, n, stdout, stderr)
	}
	if entries, _ := os.ReadDir(os.Getenv("XDG_STATE_HOME")); len(entries) != 0 {
		t.Errorf("verify created state: %v", entries)
	}

	journal := filepath.Join(t.TempDir(), "journal")
	im.SetStoreRewrite(imaptest.DovecotLineEndings)
	if code, _, stderr := runCLI(t, append([]string{"migrate", "--state", journal, "--progress", "never"}, conn...)...); code != exitOK {
		t.Fatalf("migrate: exit %d: %s", code, stderr)
	}
	appends := im.Appends()
	for _, extra := range [][]string{{"--state", journal}, {"--state", journal, "--quick"}, nil} {
		code, stdout, stderr := runCLI(t, append(append([]string{"verify"}, conn...), extra...)...)
		if code != exitOK || countMarks(stdout)['='] != n {
			t.Errorf("verify %v: exit %d, %v; want 0 and %d '=' lines\n%s%s", extra, code, countMarks(stdout), n, stdout, stderr)
		}
		if !strings.Contains(stdout, fmt.Sprintf("Identical (=):  %d", n)) {
			t.Errorf("verify %v: no summary line for %d identical:\n%s", extra, n, stdout)
		}
		// The server stores the bare-LF sample with CRLF.
		if !slices.Contains(extra, "--quick") && !strings.Contains(stdout, "line endings") {
			t.Errorf("verify %v does not say a message matched only with normalised line endings:\n%s", extra, stdout)
		}
	}
	if im.Appends() != appends || len(pop.Messages()) != n {
		t.Error("verify changed a server")
	}

	c := imapSession(t, &bridge.Endpoint{Addr: im.Addr(), Username: "alice@example.com", TLS: bridge.TLSNone,
		Secret: constSecret(testIMAPPass), Timeout: 5 * time.Second}, "Archive")
	tamper(t, c, "Archive", "<dots@example.org>", "Nightly report")
	code, stdout, stderr = runCLI(t, append([]string{"verify", "--state", journal}, conn...)...)
	marks := countMarks(stdout)
	if code != exitError || marks['*'] != 1 || marks['-'] != 1 || marks['='] != n-2 {
		t.Errorf("verify after tampering: exit %d, marks %v; want 1, one '*', one '-'\n%s", code, marks, stdout)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], "2 of") {
		t.Errorf("stderr %q: want one line saying 2 messages are not identical", stderr)
	}
}

// TestVerifyUsage: verify takes migrate's connection flags and checks them
// the same way.
func TestVerifyUsage(t *testing.T) {
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	for _, args := range [][]string{
		{"verify", "--pop3-user", "a", "--imap", "127.0.0.1", "--imap-user", "b"},
		{"verify", "--pop3", "127.0.0.1", "--pop3-user", "a", "--imap", "127.0.0.1", "--imap-user", "b", "--delete"},
		{"verify", "--pop3", "127.0.0.1", "--pop3-user", "a", "--imap", "127.0.0.1", "--imap-user", "b", "--state", "/nonexistent/j"},
	} {
		if code, _, stderr := runCLI(t, args...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d; stderr %s", args, code, exitUsage, stderr)
		}
	}
}

// TestDovecotVerify runs the built binary: migrate into Dovecot, then verify
// says '=' for every message, also with --quick; POP3 keeps every message
// unread, since verify never QUITs; after a copy is altered and another
// deleted, verify shows '*' and '-' and exits 1.
func TestDovecotVerify(t *testing.T) {
	d := dovecottest.Start(t)
	bin := buildBinary(t)
	d.AddUser(t, "vsrc", "pop-pass")
	d.AddUser(t, "vdst", "imap-pass")
	corpus := integrationCorpus(t, 40)
	d.SeedMaildrop(t, "vsrc", corpus)
	journal := filepath.Join(t.TempDir(), "journal")
	run := func(args ...string) (string, int) {
		args = append(args, "--pop3", d.POP3SAddr, "--pop3-user", "vsrc", "--imap", d.IMAPSAddr, "--imap-user", "vdst",
			"--ca-file", d.CAFile, "--folder", "Old Mail", "--state", journal)
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "POP2IMAP_POP3_PASSWORD=pop-pass", "POP2IMAP_IMAP_PASSWORD=imap-pass")
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		cmd.Run()
		return stdout.String() + stderr.String(), cmd.ProcessState.ExitCode()
	}
	if out, code := run("migrate", "--progress", "never"); code != 0 {
		t.Fatalf("migrate: exit %d\n%s", code, out)
	}
	// migrate's retrieval made Dovecot mark every message \Seen; clear that,
	// to see what verify does to flags.
	src := imapSession(t, &bridge.Endpoint{Addr: d.IMAPAddr, Username: "vsrc", TLS: bridge.TLSNone,
		Secret: constSecret("pop-pass"), Timeout: 10 * time.Second}, "INBOX")
	if err := src.Store(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.StoreFlags{Op: imap.StoreFlagsDel, Silent: true,
		Flags: []imap.Flag{imap.FlagSeen}}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	countSeen := func() int {
		t.Helper()
		if err := src.Noop().Wait(); err != nil { // picks up the POP3 sessions' flag changes
			t.Fatal(err)
		}
		seen, err := src.Search(&imap.SearchCriteria{Flag: []imap.Flag{imap.FlagSeen}}, nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		return len(seen.AllSeqNums())
	}
	for _, extra := range []string{"--quick", "--pop3-window=4"} {
		out, code := run("verify", extra)
		if marks := countMarks(out); code != 0 || marks['='] != len(corpus) {
			t.Fatalf("verify %s: exit %d, marks %v; want 0 and %d '='\n%s", extra, code, marks, len(corpus), out)
		}
		// --quick only reads headers with TOP, which leaves flags alone.
		// A full verify RETRs, and Dovecot then marks the messages \Seen
		// even though verify never QUITs: the README says so.
		if n := countSeen(); extra == "--quick" && n != 0 {
			t.Errorf("%d POP3 messages are \\Seen after verify --quick", n)
		}
	}
	if left := d.RetrAll(t, "vsrc", "pop-pass"); len(left) != len(corpus) {
		t.Errorf("POP3 maildrop holds %d messages after verify, want %d", len(left), len(corpus))
	}

	dst := imapSession(t, &bridge.Endpoint{Addr: d.IMAPAddr, Username: "vdst", TLS: bridge.TLSNone,
		Secret: constSecret("imap-pass"), Timeout: 10 * time.Second}, "Old Mail")
	tamper(t, dst, "Old Mail", "<gen-1@example.org>", "<gen-2@example.org>")
	out, code := run("verify")
	marks := countMarks(out)
	if code != exitError || marks['*'] != 1 || marks['-'] != 1 || marks['='] != len(corpus)-2 {
		t.Errorf("verify after tampering: exit %d, marks %v; want 1, one '*' and one '-'\n%s", code, marks, out)
	}
	for _, want := range []string{"* ", "- "} {
		found := false
		for _, l := range strings.Split(out, "\n") {
			found = found || strings.HasPrefix(l, want)
		}
		if !found {
			t.Errorf("no line starts with %q:\n%s", want, out)
		}
	}
}
