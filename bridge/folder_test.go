package bridge

import (
	"errors"
	"testing"

	"github.com/pop2imap/pop2imap/internal/errkind"
)

// TestServerFolderName: / in --folder becomes the server's separator; a
// flat server refuses a name with levels as a setting to fix.
func TestServerFolderName(t *testing.T) {
	for _, tt := range []struct {
		folder string
		sep    rune
		want   string
	}{
		{"Ärger/2024", '.', "Ärger.2024"},
		{"Ärger/2024", '/', "Ärger/2024"},
		{"a/b/c", '\\', `a\b\c`},
		{"INBOX", '.', "INBOX"},
		{"Old Mail", 0, "Old Mail"},
	} {
		if got, err := serverFolderName(tt.folder, tt.sep); err != nil || got != tt.want {
			t.Errorf("serverFolderName(%q, %q) = %q, %v; want %q", tt.folder, tt.sep, got, err, tt.want)
		}
	}
	_, err := serverFolderName("a/b", 0)
	var ferr *FolderError
	if !errors.As(err, &ferr) || errkind.Of(err) != errkind.Config {
		t.Errorf("flat server: %v (kind %q), want a config FolderError", err, errkind.Of(err))
	}
}
