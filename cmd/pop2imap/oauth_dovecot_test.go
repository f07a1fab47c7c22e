package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/oauthtest"
	"github.com/pop2imap/pop2imap/internal/oauthtoken"
)

// TestDovecotTokenFile runs migrations against a Dovecot whose oauth2
// passdb checks every token with the fake authorization server, with one
// token file shared by the POP3 side and the parallel IMAP connections.
//
// First, access tokens are handed out with 30 seconds to live and each is
// accepted for one login only: every login must refresh first (a token is
// stale within a minute of its expiry), through the file's lock, and the
// server's rotated refresh token must be saved each time, or the next
// refresh fails.
//
// Then the file's token looks good for an hour but the server has expired
// it: the first login is refused, the token is refreshed and the login
// retried, and the run goes on.
func TestDovecotTokenFile(t *testing.T) {
	auth := oauthtest.Start(t, oauthtest.Config{Rotate: true, ExpiresIn: 30 * time.Second, Uses: 1})
	d := startIntrospectingDovecot(t, auth.IntrospectURL())
	bin := buildBinary(t)
	const user = "otok"
	d.AddUser(t, user, "pw-"+user)
	first := integrationCorpus(t, 12)
	d.SeedMaildrop(t, user, first)

	dir := t.TempDir()
	tokenFile := filepath.Join(dir, "tokens.json")
	access, expiry, refresh := auth.Grant(user)
	if err := oauthtoken.WriteFile(tokenFile, &oauthtoken.Token{TokenURL: auth.TokenURL(), ClientID: auth.ClientID(),
		AccessToken: access, Expiry: expiry, RefreshToken: refresh}); err != nil {
		t.Fatal(err)
	}
	migrate := func(conns string) string {
		t.Helper()
		cmd := exec.Command(bin, "migrate", "--pop3", d.POP3SAddr, "--pop3-user", user,
			"--imap", d.IMAPSAddr, "--imap-user", user, "--ca-file", d.CAFile, "--folder", "Migrated",
			"--pop3-oauth2-token-file", tokenFile, "--imap-oauth2-token-file", tokenFile,
			"--imap-conns", conns, "--state", filepath.Join(dir, "journal"), "--progress", "never")
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 0 {
			t.Fatalf("migrate: exit %d\n%s", code, out)
		}
		if strings.Contains(string(out), "at-"+user) || strings.Contains(string(out), "rt-") {
			t.Errorf("the output shows a token:\n%s", out)
		}
		return string(out)
	}
	checkFile := func() {
		t.Helper()
		tok, err := oauthtoken.ReadFile(tokenFile)
		if err != nil {
			t.Fatalf("token file: %v", err)
		}
		if !slices.Equal(auth.ValidRefreshTokens(), []string{tok.RefreshToken}) {
			t.Error("the token file does not hold the refresh token the server accepts: a rotation was lost")
		}
	}

	migrate("4")
	defer func() {
		a, i := auth.Introspections()
		t.Logf("%d refreshes; Dovecot's introspections: %d active, %d refused", auth.Refreshes(), a, i)
	}()
	if got := d.FetchAll(t, user, "pw-"+user, "Migrated"); len(got) != len(first) {
		t.Fatalf("%d messages arrived, want %d", len(got), len(first))
	}
	active, inactive := auth.Introspections()
	if n := auth.Refreshes(); n < 3 || n < active {
		t.Errorf("%d refreshes for %d accepted logins; want a fresh token for every login (at least 3: POP3, IMAP, an APPEND connection)", n, active)
	}
	if inactive != 0 {
		t.Errorf("Dovecot refused %d tokens: a login used a token that was used or stale already", inactive)
	}
	checkFile()

	// An hour passes on the server but not in the file.
	auth.SetTokenLife(time.Hour, 0)
	tok, _ := oauthtoken.ReadFile(tokenFile)
	tok.Expiry = time.Now().Add(time.Hour)
	if err := oauthtoken.WriteFile(tokenFile, tok); err != nil {
		t.Fatal(err)
	}
	auth.ExpireAll()
	second := integrationCorpus(t, 17)[12:]
	d.SeedMaildrop(t, user, second)
	before := auth.Refreshes()
	_, inactiveBefore := auth.Introspections()

	migrate("2")
	if got := d.FetchAll(t, user, "pw-"+user, "Migrated"); len(got) != len(first)+len(second) {
		t.Errorf("%d messages in the folder, want %d", len(got), len(first)+len(second))
	}
	_, inactive = auth.Introspections()
	if inactive == inactiveBefore {
		t.Error("no login was refused: the expired token was never tried, the test proves nothing")
	}
	if n := auth.Refreshes() - before; n < 1 {
		t.Errorf("%d refreshes after the refusal, want at least 1", n)
	}
	checkFile()
	if fi, err := os.Stat(tokenFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, %v", fi.Mode(), err)
	}
}
