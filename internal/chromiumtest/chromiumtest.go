// Package chromiumtest loads a page in headless Chromium, as a person would
// open it, and hands back the DOM after its scripts ran, so that a test can
// check what the page shows rather than the HTML that was sent.
//
// A test that uses it skips where Chromium is not installed, unless the
// environment says POP2IMAP_CHROMIUM=require, as CI does (it installs
// Debian's chromium package). The package is for tests only: the pop2imap
// binary must not link it.
package chromiumtest

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"
)

// names are the commands Chromium goes by: Debian's, other
// distributions', and Google's build.
var names = []string{"chromium", "chromium-browser", "google-chrome"}

// Browser returns the path of the Chromium binary. Where there is none it
// skips the test, or fails it when POP2IMAP_CHROMIUM=require.
func Browser(t testing.TB) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("POP2IMAP_CHROMIUM") == "require" {
		t.Fatal("no chromium installed, and POP2IMAP_CHROMIUM=require (CI installs Debian's chromium)")
	}
	t.Skip("no chromium installed")
	return ""
}

// DumpDOM loads url in headless Chromium with a profile of its own and
// returns the document as it stands once the page has loaded and its
// scripts have run (--dump-dom). It skips as Browser does.
func DumpDOM(t testing.TB, url string) string {
	t.Helper()
	browser := Browser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless", "--no-sandbox", "--disable-gpu",
		"--user-data-dir="+t.TempDir(), "--dump-dom", url)
	out, err := cmd.Output()
	if err != nil {
		var stderr []byte
		var exitErr *exec.ExitError
		if errors.As(err, &exitErr) {
			stderr = exitErr.Stderr
		}
		t.Fatalf("chromium --dump-dom %s: %v\n%s\n%s", url, err, out, stderr)
	}
	return string(out)
}
