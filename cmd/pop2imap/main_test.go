package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pop2imap/pop2imap/internal/demo"
	"github.com/pop2imap/pop2imap/internal/imaptest"
	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/internal/testservers"
	"github.com/pop2imap/pop2imap/state"
)

const (
	testPOP3Pass = "pop3-Secret-7Hq"
	testIMAPPass = "imap-Secret-9Zx"
)

// runCLI runs one command line in-process and returns its exit code and
// output.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestUsageErrors checks that each mistake on the command line gets exit
// code 2 and one line that names the problem.
func TestUsageErrors(t *testing.T) {
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	base := []string{"migrate", "--pop3", "127.0.0.1:1", "--pop3-user", "a", "--imap", "127.0.0.1:1", "--imap-user", "b"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, ""},
		{"unknown command", []string{"copy"}, `unknown command "copy"`},
		{"missing --pop3", []string{"migrate", "--pop3-user", "a", "--imap", "x", "--imap-user", "b"}, "missing --pop3"},
		{"missing --imap-user", []string{"migrate", "--pop3", "x", "--pop3-user", "a", "--imap", "x"}, "missing --imap-user"},
		{"unknown flag", append(base, "--colour"), "unknown flag"},
		{"bad tls mode", append(base, "--pop3-tls", "sometimes"), "--pop3-tls"},
		{"password as argument", append(base, "hunter2"), "passwords are never given on the command line"},
		{"too many connections", append(base, "--imap-conns", "99"), "--imap-conns"},
		{"bad progress", append(base, "--progress", "loud"), "--progress"},
		{"bad log format", append(base, "--log-format", "xml"), "--log-format"},
		{"missing CA file", append(base, "--ca-file", "/nonexistent/ca.pem"), "--ca-file"},
		{"plaintext to a remote host", []string{"migrate", "--pop3", "pop.example.com", "--pop3-tls", "none", "--pop3-user", "a", "--imap", "127.0.0.1", "--imap-user", "b"}, "--allow-insecure-auth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit code %d, want %d; stderr: %s", code, exitUsage, stderr)
			}
			if !strings.Contains(stderr, tt.want) {
				t.Errorf("stderr %q does not mention %q", stderr, tt.want)
			}
			if strings.Contains(stderr, "hunter2") {
				t.Errorf("stderr %q repeats the stray argument, which may be a password", stderr)
			}
		})
	}
}

func TestMissingPassword(t *testing.T) {
	t.Setenv("POP2IMAP_POP3_PASSWORD", "")
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	code, _, stderr := runCLI(t, "migrate", "--pop3", "127.0.0.1", "--pop3-user", "a", "--imap", "127.0.0.1", "--imap-user", "b")
	if code != exitUsage || !strings.Contains(stderr, "POP2IMAP_POP3_PASSWORD") {
		t.Errorf("exit %d, stderr %q: want exit 2 naming POP2IMAP_POP3_PASSWORD", code, stderr)
	}
}

// cliEnv is a POP3 and an IMAP server loaded with the sample mail.
type cliEnv struct {
	pop     *pop3test.Server
	imap    *imaptest.Server
	dir     string
	args    []string
	samples int
}

// startServers starts a POP3 server for alice and an IMAP server for
// alice@example.com, with the test passwords.
func startServers(t *testing.T) (*pop3test.Server, *imaptest.Server) {
	t.Helper()
	p := testservers.Start(t, testservers.Config{
		POP3:     pop3test.Config{Username: "alice", Password: testPOP3Pass},
		IMAPUser: "alice@example.com", IMAPPassword: testIMAPPass,
	})
	return p.POP3, p.IMAP
}

func newCLIEnv(t *testing.T) *cliEnv {
	t.Helper()
	pop, im := startServers(t)
	mail, err := demo.SampleMail()
	if err != nil {
		t.Fatal(err)
	}
	for i, m := range mail {
		pop.AddMessage("uidl-"+string(rune('a'+i)), m)
	}
	dir := t.TempDir()
	return &cliEnv{pop: pop, imap: im, dir: dir, samples: len(mail), args: []string{
		"migrate", "--pop3", pop.Addr(), "--pop3-tls", "none", "--pop3-user", "alice",
		"--imap", im.Addr(), "--imap-tls", "none", "--imap-user", "alice@example.com",
		"--state", filepath.Join(dir, "j"), "--progress", "never",
	}}
}

// TestMigrateCommandKeepsSecrets runs a real migration through the CLI, with
// passwords from a file and from a command, and checks that neither appears
// in any output, the report or the journal.
func TestMigrateCommandKeepsSecrets(t *testing.T) {
	e := newCLIEnv(t)
	passFile := filepath.Join(e.dir, "pop3.pass")
	if err := os.WriteFile(passFile, []byte(testPOP3Pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POP2IMAP_POP3_PASSWORD", "")
	t.Setenv("POP2IMAP_IMAP_PASSWORD", "")
	report := filepath.Join(e.dir, "report.json")
	for _, format := range []string{"text", "json"} {
		args := append(append([]string{}, e.args...), "--pop3-password-file", passFile,
			"--imap-password-cmd", "echo "+testIMAPPass, "--report", report, "--delete", "-v", "--log-format", format)
		code, stdout, stderr := runCLI(t, args...)
		if code != exitOK {
			t.Fatalf("exit %d; stderr: %s", code, stderr)
		}
		rep, err := os.ReadFile(report)
		if err != nil {
			t.Fatal(err)
		}
		journal, err := os.ReadFile(filepath.Join(e.dir, "j"))
		if err != nil {
			t.Fatal(err)
		}
		for name, text := range map[string]string{"stdout": stdout, "stderr": stderr, "report": string(rep), "journal": string(journal)} {
			for _, secret := range []string{testPOP3Pass, testIMAPPass} {
				if strings.Contains(text, secret) {
					t.Errorf("%s (%s logs) contains a password", name, format)
				}
			}
		}
	}
	if got := len(e.imap.Messages("INBOX")); got != e.samples {
		t.Errorf("INBOX has %d messages, want %d", got, e.samples)
	}
}

// TestWrongPasswordIsOneClearLine: a refused login exits 1 with one line
// that says what to check, and never echoes the password.
func TestWrongPasswordIsOneClearLine(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("POP2IMAP_POP3_PASSWORD", "wrong-pop3-password")
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	code, _, stderr := runCLI(t, e.args...)
	if code != exitError {
		t.Fatalf("exit %d, want %d", code, exitError)
	}
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.Contains(last, "check the POP3 password") || strings.Contains(stderr, "wrong-pop3-password") {
		t.Errorf("last line %q: want a hint to check the POP3 password and no password", last)
	}
	if len(e.pop.Messages()) != e.samples {
		t.Error("a failed login changed the maildrop")
	}
}

// TestLeftBehindExitCode: a refused message gives exit code 3 and is listed
// in the report.
func TestLeftBehindExitCode(t *testing.T) {
	e := newCLIEnv(t)
	e.imap.SetAppendFault(func(_ int, data []byte) imaptest.AppendFault {
		if len(data) > 100_000 {
			return imaptest.AppendRefuse
		}
		return imaptest.AppendOK
	})
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	report := filepath.Join(e.dir, "r.json")
	code, stdout, stderr := runCLI(t, append(e.args, "--delete", "--report", report)...)
	if code != exitLeftBehind {
		t.Fatalf("exit %d, want %d; stderr: %s", code, exitLeftBehind, stderr)
	}
	if !strings.Contains(stdout, "Left behind:   1") {
		t.Errorf("summary does not show one message left behind:\n%s", stdout)
	}
	rep, _ := os.ReadFile(report)
	if !strings.Contains(string(rep), `"left_behind": 1`) || !strings.Contains(string(rep), "TOOBIG") {
		t.Errorf("report does not list the refused message:\n%s", rep)
	}
	if len(e.pop.Messages()) != 1 {
		t.Errorf("POP3 maildrop holds %d messages, want only the refused one", len(e.pop.Messages()))
	}
}

// TestLockedJournal: a second run on a journal in use refuses with exit 1
// and says why.
func TestLockedJournal(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	j, err := state.Open(filepath.Join(e.dir, "j"))
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	code, _, stderr := runCLI(t, e.args...)
	if code != exitError || !strings.Contains(stderr, "in use") {
		t.Errorf("exit %d, stderr %q: want exit 1 saying the journal is in use", code, stderr)
	}
}

// TestDryRunPrintsPlan: --dry-run lists what it would copy and delete, and
// changes nothing.
func TestDryRunPrintsPlan(t *testing.T) {
	e := newCLIEnv(t)
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	code, stdout, stderr := runCLI(t, append(e.args, "--dry-run", "--delete")...)
	if code != exitOK {
		t.Fatalf("exit %d; stderr: %s", code, stderr)
	}
	if n := strings.Count(stdout, "would-copy"); n != e.samples {
		t.Errorf("%d would-copy lines, want %d", n, e.samples)
	}
	if n := strings.Count(stdout, "would-delete"); n != e.samples {
		t.Errorf("%d would-delete lines, want %d", n, e.samples)
	}
	if e.imap.Appends() != 0 || len(e.pop.Messages()) != e.samples {
		t.Error("dry run changed a server")
	}
	if _, err := os.Stat(filepath.Join(e.dir, "j")); !os.IsNotExist(err) {
		t.Error("dry run created the journal")
	}
}

func TestVersion(t *testing.T) {
	code, stdout, _ := runCLI(t, "version")
	if code != exitOK || !strings.HasPrefix(stdout, "pop2imap ") {
		t.Errorf("version: exit %d, output %q", code, stdout)
	}
}

// TestDemo runs the README's first command in-process.
func TestDemo(t *testing.T) {
	code, stdout, stderr := runCLI(t, "demo", "--progress", "never")
	if code != exitOK || !strings.Contains(stdout, "Demo passed") {
		t.Fatalf("demo: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}
