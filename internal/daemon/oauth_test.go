package daemon

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/oauthtest"
	"github.com/pop2imap/pop2imap/internal/oauthtoken"
)

// TestOAuth2TokenFileSecret: password = { oauth2_token_file = "..." }, a
// path relative to the config file, makes the endpoint log in with OAuth2
// and hands out the file's access token, refreshed when it is stale.
func TestOAuth2TokenFileSecret(t *testing.T) {
	t.Setenv("TEST_IMAP_PASSWORD", "y")
	srv := oauthtest.Start(t, oauthtest.Config{Rotate: true, ExpiresIn: 30 * time.Second}) // always stale
	access, expiry, refresh := srv.Grant("u")
	text := strings.Replace(minimalAccount, `{ env = "TEST_POP3_PASSWORD" }`, `{ oauth2_token_file = "tokens/u.json" }`, 1)
	path := writeConfig(t, text)
	tokenFile := filepath.Join(filepath.Dir(path), "tokens", "u.json")
	os.Mkdir(filepath.Dir(tokenFile), 0o700)
	if err := oauthtoken.WriteFile(tokenFile, &oauthtoken.Token{TokenURL: srv.TokenURL(), ClientID: srv.ClientID(),
		AccessToken: access, Expiry: expiry, RefreshToken: refresh}); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path, Defaults{})
	if err != nil {
		t.Fatal(err)
	}
	ep := cfg.Accounts[0].POP3
	if !ep.OAuth2 {
		t.Error("an endpoint with a token file does not log in with OAuth2")
	}
	got, err := ep.Secret(context.Background())
	if err != nil || got == access || !strings.HasPrefix(got, "at-u-") || srv.Refreshes() != 1 {
		t.Errorf("Secret = %q, %v after %d refreshes; want a refreshed access token", got, err, srv.Refreshes())
	}

	os.Remove(tokenFile)
	_, err = LoadConfig(path, Defaults{})
	var cerr *ConfigError
	if !errors.As(err, &cerr) || !strings.Contains(err.Error(), "pop3.password") || !strings.Contains(err.Error(), "u.json") {
		t.Errorf("a missing token file: %v; want a config error naming pop3.password and the file", err)
	}

	text = strings.Replace(minimalAccount, `{ env = "TEST_POP3_PASSWORD" }`, `{ oauth2_token_file = "t.json" }`, 1)
	text = strings.Replace(text, `tls = "none"`, `tls = "none"`+"\n  auth = \"user\"", 1)
	path = writeConfig(t, text)
	if err := oauthtoken.WriteFile(filepath.Join(filepath.Dir(path), "t.json"), &oauthtoken.Token{TokenURL: srv.TokenURL(),
		ClientID: srv.ClientID(), AccessToken: "a", RefreshToken: "r"}); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(path, Defaults{}); err == nil || !strings.Contains(err.Error(), "not an OAuth2 access token") {
		t.Errorf("a token file with auth = \"user\": %v; want a refusal", err)

	}
}

// TestClassifyTokenErrors: a token that only a new login can fix is an
// auth failure; a token endpoint out of reach or a bad token file is a
// config failure. Both wait at the slow pace, never in a retry storm.
func TestClassifyTokenErrors(t *testing.T) {
	wrap := func(r oauthtoken.Reason) error {
		return &bridge.ConnectError{Proto: "imap", Addr: "x:993", Op: "access token",
			Err: &oauthtoken.Error{Op: "refresh", Path: "/t.json", Reason: r}}
	}
	for r, want := range map[oauthtoken.Reason]ErrorKind{
		oauthtoken.ReasonRevoked:     KindAuth,
		oauthtoken.ReasonClient:      KindAuth,
		oauthtoken.ReasonDenied:      KindAuth,
		oauthtoken.ReasonExpired:     KindAuth,
		oauthtoken.ReasonServer:      KindAuth,
		oauthtoken.ReasonUnreachable: KindToken,
		oauthtoken.ReasonFile:        KindToken,
	} {
		if got := Classify(wrap(r)); got != want || !got.Persistent() {
			t.Errorf("Classify(%v) = %q, want %q (persistent)", r, got, want)
		}
	}
}
