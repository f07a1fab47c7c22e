package secret

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestParseCell proves how a batch CSV password cell is read: the three
// reference prefixes, literal passwords, and the literal: escape for a
// password that looks like a reference.
func TestParseCell(t *testing.T) {
	tests := []struct {
		cell    string
		ref     Ref
		literal string
		isRef   bool
	}{
		{"env:POP_PW", Ref{Env, "POP_PW"}, "", true},
		{"env: POP_PW ", Ref{Env, "POP_PW"}, "", true},
		{"file:pw/alice", Ref{File, "pw/alice"}, "", true},
		{"file:/etc/pop2imap/alice", Ref{File, "/etc/pop2imap/alice"}, "", true},
		{"cmd:pass show mail/alice", Ref{Command, "pass show mail/alice"}, "", true},
		{"env:", Ref{Env, ""}, "", true}, // Open refuses it
		{"hunter2", Ref{}, "hunter2", false},
		{" spaced secret ", Ref{}, " spaced secret ", false},
		{"", Ref{}, "", false},
		{"literal:env:HOME", Ref{}, "env:HOME", false},
		{"literal:literal:x", Ref{}, "literal:x", false},
		{"literal: keep spaces ", Ref{}, " keep spaces ", false},
		{"ENV:HOME", Ref{}, "ENV:HOME", false}, // prefixes are lower-case
		{"x env:HOME", Ref{}, "x env:HOME", false},
		{"command:ls", Ref{}, "command:ls", false}, // the TOML spelling is not a cell prefix
	}
	for _, tt := range tests {
		ref, literal, isRef := ParseCell(tt.cell)
		if ref != tt.ref || literal != tt.literal || isRef != tt.isRef {
			t.Errorf("ParseCell(%q) = %v, %q, %v; want %v, %q, %v", tt.cell, ref, literal, isRef, tt.ref, tt.literal, tt.isRef)
		}
	}
}

// TestParseCellOpens proves that each reference a cell names resolves by
// the same Open as the TOML references and the flags, with a relative
// file: path anchored at BaseDir.
func TestParseCellOpens(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "pw"), []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("POP2IMAP_TEST_CELL", "from-env")
	for cell, want := range map[string]string{
		"env:POP2IMAP_TEST_CELL": "from-env",
		"file:pw":                "from-file",
		"cmd:echo from-cmd":      "from-cmd",
	} {
		ref, _, isRef := ParseCell(cell)
		if !isRef {
			t.Fatalf("%q is not a reference", cell)
		}
		src := open(t, ref, Options{BaseDir: dir})
		if got, err := src.Resolve(context.Background()); got != want || err != nil {
			t.Errorf("%q resolves to %q, %v; want %q", cell, got, err, want)
		}
	}
}
