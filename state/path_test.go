package state

import (
	"encoding/hex"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestDefaultPath proves where journals go by default and that their names
// are readable, safe, bounded and distinct.
func TestDefaultPath(t *testing.T) {
	name := regexp.MustCompile(`^[A-Za-z0-9._@-]+-[0-9a-f]{12}\.journal$`)
	tests := []struct {
		name      string
		xdg, home string
		fields    [5]string // pop3Addr, pop3User, imapAddr, imapUser, folder
		wantDir   string
		wantSlug  string
	}{
		{"XDG_STATE_HOME", "/xdg", "/home/a", [5]string{"pop.example.com", "alice", "imap.example.com", "bob", "INBOX"},
			"/xdg/pop2imap", "alice@pop.example.com-to-bob@imap.example.com-INBOX"},
		{"HOME fallback", "", "/home/a", [5]string{"pop.example.com:995", "alice", "imap.example.com:993", "bob", "Archive/2024"},
			"/home/a/.local/state/pop2imap", "alice@pop.example.com_995-to-bob@imap.example.com_993-Archive_2024"},
		{"relative XDG_STATE_HOME is ignored", "rel", "/home/a", [5]string{"p", "u", "i", "v", "f"},
			"/home/a/.local/state/pop2imap", "u@p-to-v@i-f"},
		{"unsafe characters", "/xdg", "/h", [5]string{"[::1]:110", "../../etc/passwd", "i", "v", "Входящие / \x00 *?"},
			"/xdg/pop2imap", "_._.._etc_passwd@_1_110-to-v@i-_"},
		{"leading dash", "/xdg", "/h", [5]string{"p", "-rf", "i", "v", "f"},
			"/xdg/pop2imap", "_rf@p-to-v@i-f"},
		{"long fields", "/xdg", "/h", [5]string{strings.Repeat("p", 300), "u", "i", "v", "f"},
			"/xdg/pop2imap", "u@" + strings.Repeat("p", maxSlugLen-2)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("XDG_STATE_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			f := tt.fields
			got, err := DefaultPath(f[0], f[1], f[2], f[3], f[4])
			if err != nil {
				t.Fatal(err)
			}
			if dir := filepath.Dir(got); dir != tt.wantDir {
				t.Errorf("directory = %s, want %s", dir, tt.wantDir)
			}
			base := filepath.Base(got)
			if !name.MatchString(base) {
				t.Errorf("name %q has characters outside [A-Za-z0-9._@-]", base)
			}
			if slug := base[:len(base)-len("-0123456789ab.journal")]; slug != tt.wantSlug {
				t.Errorf("slug = %q, want %q", slug, tt.wantSlug)
			}
			if len(base)+len(compactSuffix)+10 > 255 {
				t.Errorf("name is %d bytes, too long for a file system", len(base))
			}
		})
	}
}

// TestDefaultPathDistinct proves that account pairs whose slugs are the same
// still get different journals.
func TestDefaultPathDistinct(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/xdg")
	pairs := [][5]string{
		{"pop.example.com:110", "alice", "imap.example.com", "bob", "INBOX"},
		{"pop.example.com_110", "alice", "imap.example.com", "bob", "INBOX"},
		{"pop.example.com:110", "alice", "imap.example.com", "bob", "INBOX/"},
		{"b@pop.example.com:110", "alice", "imap.example.com", "bob", "INBOX"}, // fields shifted across "@"
		{"pop.example.com:110", "alice@b", "imap.example.com", "bob", "INBOX"},
		{"pop.example.com:110", "alice", "imap.example.com", "bob", "inbox"},
		{"pop.example.com:110", "alice", "imap.example.com", "bob", strings.Repeat("x", 200) + "1"},
		{"pop.example.com:110", "alice", "imap.example.com", "bob", strings.Repeat("x", 200) + "2"},
	}
	seen := map[string]int{}
	for i, p := range pairs {
		got, err := DefaultPath(p[0], p[1], p[2], p[3], p[4])
		if err != nil {
			t.Fatal(err)
		}
		if j, dup := seen[got]; dup {
			t.Fatalf("pairs %d and %d share journal %s", j, i, got)
		}
		seen[got] = i
	}
}

func TestDefaultPathNoHome(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "")
	t.Setenv("HOME", "")
	if _, err := DefaultPath("p", "u", "i", "v", "f"); err == nil || !strings.Contains(err.Error(), "XDG_STATE_HOME") {
		t.Fatalf("DefaultPath without HOME: %v, want an error naming XDG_STATE_HOME", err)
	}
}

// TestJournalName proves that DefaultPath names the journal with
// JournalName, and that the name carries the start of PairHash: a batch
// that keys its accounts by PairHash and names journals with JournalName
// agrees with migrate on both.
func TestJournalName(t *testing.T) {
	t.Setenv("XDG_STATE_HOME", "/xdg")
	f := [5]string{"pop.example.com:995", "alice", "imap.example.com:993", "bob", "Archive/2024"}
	path, err := DefaultPath(f[0], f[1], f[2], f[3], f[4])
	if err != nil {
		t.Fatal(err)
	}
	name := JournalName(f[0], f[1], f[2], f[3], f[4])
	if filepath.Base(path) != name {
		t.Errorf("DefaultPath's name %q is not JournalName's %q", filepath.Base(path), name)
	}
	sum := PairHash(f[0], f[1], f[2], f[3], f[4])
	if want := "-" + hex.EncodeToString(sum[:6]) + ".journal"; !strings.HasSuffix(name, want) {
		t.Errorf("name %q does not end with the pair hash %q", name, want)
	}
	if other := PairHash(f[0], f[1], f[2], f[3], "Archive/2025"); other == sum {
		t.Error("another folder has the same pair hash")
	}
}
