package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pop2imap/pop2imap/internal/demo"
	"github.com/pop2imap/pop2imap/internal/dovecottest"
)

// buildBinary compiles the command once per test binary run, so the
// integration tests exercise exactly what a user runs.
func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "pop2imap")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// integrationCorpus is the sample mail that Dovecot accepts (it refuses an
// empty APPEND) plus generated messages of many sizes, including a 1 MB
// single line and lines of dots.
func integrationCorpus(t *testing.T, n int) [][]byte {
	t.Helper()
	mail, err := demo.SampleMail()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, m := range mail {
		if len(m) > 0 {
			out = append(out, m)
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < n; i++ {
		var b bytes.Buffer
		fmt.Fprintf(&b, "From: sender%d@example.org\r\nTo: alice@example.com\r\nSubject: message %d\r\n", i, i)
		fmt.Fprintf(&b, "Date: Mon, 2 Jan 2006 15:%02d:%02d +0000\r\n", i/60%60, i%60)
		if i%7 != 0 { // every seventh has no Message-ID
			fmt.Fprintf(&b, "Message-ID: <gen-%d@example.org>\r\n", i)
		}
		b.WriteString("\r\n")
		lines := rng.IntN(400)
		for l := 0; l < lines; l++ {
			if l%50 == 0 {
				b.WriteString(".\r\n..dot line\r\n")
			}
			fmt.Fprintf(&b, "line %d of message %d %s\r\n", l, i, strings.Repeat("x", rng.IntN(70)))
		}
		out = append(out, b.Bytes())
	}
	long := append([]byte("Subject: one long line\r\nMessage-ID: <long@example.org>\r\n\r\n"), bytes.Repeat([]byte("y"), 1<<20)...)
	return append(out, append(long, "\r\n"...))
}

// sameMultiset reports how many of want are missing from got, and how many
// of got are extra.
func sameMultiset(got, want [][]byte) (missing, extra int) {
	used := make([]bool, len(got))
	for _, w := range want {
		found := false
		for i, g := range got {
			if !used[i] && bytes.Equal(g, w) {
				used[i], found = true, true
				break
			}
		}
		if !found {
			missing++
		}
	}
	for _, u := range used {
		if !u {
			extra++
		}
	}
	return missing, extra
}

// TestDovecotMigrate runs the built binary against a real Dovecot in each TLS
// mode: every message arrives byte-identical to what POP3 RETR delivered, a
// rerun appends nothing, and --delete empties the POP3 maildrop.
func TestDovecotMigrate(t *testing.T) {
	d := dovecottest.Start(t)
	bin := buildBinary(t)
	modes := []struct {
		name               string
		pop3Addr, imapAddr string
		tlsMode            string
	}{
		{"implicit", d.POP3SAddr, d.IMAPSAddr, "implicit"},
		{"starttls", d.POP3Addr, d.IMAPAddr, "starttls"},
		{"none", d.POP3Addr, d.IMAPAddr, "none"},
	}
	corpus := integrationCorpus(t, 150)
	for i, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			src, dst := fmt.Sprintf("src%d", i), fmt.Sprintf("dst%d", i)
			d.AddUser(t, src, "pop-pass-"+src)
			d.AddUser(t, dst, "imap-pass-"+dst)
			d.SeedMaildrop(t, src, corpus)
			served := d.RetrAll(t, src, "pop-pass-"+src)
			dir := t.TempDir()
			migrate := func(extra ...string) (string, int) {
				args := append([]string{"migrate",
					"--pop3", m.pop3Addr, "--pop3-user", src, "--pop3-tls", m.tlsMode,
					"--imap", m.imapAddr, "--imap-user", dst, "--imap-tls", m.tlsMode,
					"--ca-file", d.CAFile, "--folder", "Old Mail", "--state", filepath.Join(dir, "journal"),
					"--progress", "never"}, extra...)
				cmd := exec.Command(bin, args...)
				cmd.Env = append(os.Environ(), "POP2IMAP_POP3_PASSWORD=pop-pass-"+src, "POP2IMAP_IMAP_PASSWORD=imap-pass-"+dst)
				out, _ := cmd.CombinedOutput()
				return string(out), cmd.ProcessState.ExitCode()
			}
			out, code := migrate()
			if code != 0 {
				t.Fatalf("migrate: exit %d\n%s", code, out)
			}
			got := d.FetchAll(t, dst, "imap-pass-"+dst, "Old Mail")
			if missing, extra := sameMultiset(got, served); missing != 0 || extra != 0 {
				t.Fatalf("%d messages stored for %d served: %d missing or altered, %d extra", len(got), len(served), missing, extra)
			}
			out, code = migrate()
			if code != 0 || !strings.Contains(out, "Appended:      0") {
				t.Fatalf("rerun: exit %d, want nothing appended\n%s", code, out)
			}
			out, code = migrate("--delete")
			if code != 0 {
				t.Fatalf("--delete run: exit %d\n%s", code, out)
			}
			if left := d.RetrAll(t, src, "pop-pass-"+src); len(left) != 0 {
				t.Errorf("POP3 maildrop still holds %d messages after --delete", len(left))
			}
			if got := d.FetchAll(t, dst, "imap-pass-"+dst, "Old Mail"); len(got) != len(served) {
				t.Errorf("folder holds %d messages after the --delete run, want %d", len(got), len(served))
			}
		})
	}
}

// TestDovecotTLSFailures: a certificate that does not verify stops the run
// with one line naming the cause and the flag that fixes it.
func TestDovecotTLSFailures(t *testing.T) {
	d := dovecottest.Start(t)
	d.AddUser(t, "u", "p")
	bin := buildBinary(t)
	otherCA := filepath.Join(t.TempDir(), "other.pem")
	// A CA that did not sign the server's certificate.
	other := dovecottest.Start(t)
	data, err := os.ReadFile(other.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(otherCA, data, 0o600)
	tests := []struct {
		name  string
		extra []string
		want  string
	}{
		{"unknown CA", nil, "--ca-file"},
		{"wrong CA", []string{"--ca-file", otherCA}, "--ca-file"},
		{"wrong name", []string{"--ca-file", d.CAFile, "--tls-server-name", "mail.example.com"}, "--tls-server-name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"migrate", "--pop3", d.POP3SAddr, "--pop3-user", "u", "--imap", d.IMAPSAddr,
				"--imap-user", "u", "--state", filepath.Join(t.TempDir(), "j"), "--progress", "never"}, tt.extra...)
			cmd := exec.Command(bin, args...)
			cmd.Env = append(os.Environ(), "POP2IMAP_POP3_PASSWORD=p", "POP2IMAP_IMAP_PASSWORD=p")
			out, _ := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != exitError {
				t.Fatalf("exit %d, want %d\n%s", cmd.ProcessState.ExitCode(), exitError, out)
			}
			if !strings.Contains(string(out), tt.want) || !strings.Contains(string(out), "certificate") {
				t.Errorf("output does not explain the certificate failure with %s:\n%s", tt.want, out)
			}
		})
	}
}
