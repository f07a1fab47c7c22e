package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pop2imap/pop2imap/internal/dovecottest"
)

// TestDovecotFolderHierarchy: against a Dovecot whose separator is ".",
// --folder takes "/" between levels: "Archive/2024" lands in
// "Archive.2024", its parent created first; a name the server refuses
// exits 2 with one line that names the separator.
func TestDovecotFolderHierarchy(t *testing.T) {
	d := dovecottest.StartWith(t, dovecottest.Options{ExtraConfig: "namespace inbox {\n  separator = .\n}\n"})
	d.AddUser(t, "fsrc", "pop-pass-fsrc")
	d.AddUser(t, "fdst", "imap-pass-fdst")
	corpus := integrationCorpus(t, 3)
	d.SeedMaildrop(t, "fsrc", corpus)
	served := d.RetrAll(t, "fsrc", "pop-pass-fsrc")
	t.Setenv("POP2IMAP_POP3_PASSWORD", "pop-pass-fsrc")
	t.Setenv("POP2IMAP_IMAP_PASSWORD", "imap-pass-fdst")
	dir := t.TempDir()
	migrate := func(folder string) (int, string) {
		code, _, stderr := runCLI(t, "migrate", "--pop3", d.POP3Addr, "--pop3-user", "fsrc", "--pop3-tls", "none",
			"--imap", d.IMAPAddr, "--imap-user", "fdst", "--imap-tls", "none", "--folder", folder,
			"--state", filepath.Join(dir, fmt.Sprintf("j%d", len(folder))), "--progress", "never")
		return code, stderr
	}
	if code, stderr := migrate("Archive/2024"); code != exitOK {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := d.FetchAll(t, "fdst", "imap-pass-fdst", "Archive.2024")
	if missing, extra := sameMultiset(got, served); missing != 0 || extra != 0 {
		t.Fatalf("Archive.2024 holds %d messages for %d served (%d missing, %d extra)", len(got), len(served), missing, extra)
	}
	code, stdout, stderr := runCLI(t, "verify", "--pop3", d.POP3Addr, "--pop3-user", "fsrc", "--pop3-tls", "none",
		"--imap", d.IMAPAddr, "--imap-user", "fdst", "--imap-tls", "none", "--folder", "Archive/2024", "--progress", "never",
		"--state", filepath.Join(dir, "j12"))
	if code != exitOK {
		t.Errorf("verify --folder Archive/2024: exit %d\n%s%s", code, stdout, stderr)
	}
	// Each level of a Maildir folder is a file name: 300 bytes is too long.
	code, stderr = migrate("Archive/" + strings.Repeat("x", 300))
	line := strings.TrimSpace(stderr)
	line = line[strings.LastIndex(line, "\n")+1:]
	if code != exitUsage || !strings.Contains(line, `separates folder levels with "."`) || strings.Contains(line, rerunAdvice) {
		t.Errorf("exit %d, last line %q; want exit 2 naming the separator", code, line)
	}
}
