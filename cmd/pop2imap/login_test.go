package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/oauthtest"
	"github.com/pop2imap/pop2imap/internal/oauthtoken"
)

func loginArgs(srv *oauthtest.Server, clientID, tokenFile string) []string {
	return []string{"login", "--device-auth-url", srv.DeviceURL(), "--token-url", srv.TokenURL(),
		"--scope", "mail offline_access", "--client-id", clientID, "--token-file", tokenFile}
}

// lastLine is the line the user reads last: the error, after any prompt.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return lines[len(lines)-1]
}

// TestLoginDevice: `pop2imap login` with a device endpoint prints the URL
// and the code, and writes a private token file (creating its directory)
// that holds what a refresh needs; no token is printed.
func TestLoginDevice(t *testing.T) {
	srv := oauthtest.Start(t, oauthtest.Config{AutoApprove: "alice"})
	file := filepath.Join(t.TempDir(), "tokens", "alice.json")
	code, stdout, stderr := runCLI(t, loginArgs(srv, srv.ClientID(), file)...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if !strings.Contains(stderr, "/verify") || !strings.Contains(stderr, "CODE1") {
		t.Errorf("the prompt lacks the URL or the code:\n%s", stderr)
	}
	tok, err := oauthtoken.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok.AccessToken, "at-alice-") || tok.TokenURL != srv.TokenURL() || tok.ClientID != srv.ClientID() ||
		strings.Join(tok.Scopes, " ") != "mail offline_access" {
		t.Errorf("token file holds %v, scopes %q", tok, tok.Scopes)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v", fi.Mode())
	}
	for _, secret := range []string{tok.AccessToken, tok.RefreshToken} {
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("the output shows a token")
		}
	}
}

// TestLoginErrors: a wrong client id, a refusal, an expired code and an
// unreachable server each end with exit 1 and one line that says so and
// what to do, and leave no token file.
func TestLoginErrors(t *testing.T) {
	tests := []struct {
		name     string
		cfg      oauthtest.Config
		clientID string
		down     bool
		want     []string
	}{
		{"wrong client id", oauthtest.Config{}, "nobody", false, []string{"client id", "unauthorized_client"}},
		{"user declines", oauthtest.Config{AutoDeny: true}, "", false, []string{"access was denied", "pop2imap login"}},
		{"code expires", oauthtest.Config{DeviceExpiresIn: time.Second}, "", false, []string{"expired before it was approved", "pop2imap login"}},
		{"server unreachable", oauthtest.Config{}, "", true, []string{"could not be reached", "network"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := oauthtest.Start(t, tt.cfg)
			id := tt.clientID
			if id == "" {
				id = srv.ClientID()
			}
			if tt.down {
				srv.Close()
			}
			file := filepath.Join(t.TempDir(), "t.json")
			code, _, stderr := runCLI(t, loginArgs(srv, id, file)...)
			line := lastLine(stderr)
			if code != exitError || !strings.HasPrefix(line, "pop2imap: ") {
				t.Fatalf("exit %d, last line %q; want exit 1 and a pop2imap: line", code, line)
			}
			for _, w := range tt.want {
				if !strings.Contains(line, w) {
					t.Errorf("%q does not say %q", line, w)
				}
			}
			if _, err := os.Stat(file); err == nil {
				t.Error("a failed login wrote a token file")
			}
		})
	}
}

// TestLoginUsage: flags that cannot make a login are usage errors.
func TestLoginUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{[]string{"login", "--provider", "microsoft", "--client-id", "x"}, "--token-file"},
		{[]string{"login", "--provider", "microsoft", "--token-file", "f"}, "--client-id"},
		{[]string{"login", "--provider", "gmail", "--client-id", "x", "--token-file", "f"}, "--client-secret-file"},
		{[]string{"login", "--provider", "yahoo", "--client-id", "x", "--token-file", "f"}, "unknown --provider"},
		{[]string{"login", "--client-id", "x", "--token-file", "f"}, "missing --provider"},
		{[]string{"login", "--provider", "microsoft", "--token-url", "https://x/t", "--client-id", "x", "--token-file", "f"}, "cannot be combined"},
		{[]string{"login", "--token-url", "https://x/t", "--client-id", "x", "--token-file", "f"}, "exactly one of"},
	} {
		code, _, stderr := runCLI(t, tt.args...)
		if code != exitUsage || !strings.Contains(stderr, tt.want) || strings.Count(stderr, "\n") != 1 {
			t.Errorf("%v: exit %d, %q; want exit 2 and one line naming %s", tt.args[1:], code, stderr, tt.want)
		}
	}
}

// TestTokenFileErrors: migrate with a token file whose refresh token was
// revoked, whose token endpoint is down, or that does not exist, fails
// with exit 1 and one line with the fix, and never shows the refresh token.
func TestTokenFileErrors(t *testing.T) {
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	tests := []struct {
		name   string
		break_ func(srv *oauthtest.Server, file string)
		want   []string
	}{
		{"revoked", func(srv *oauthtest.Server, _ string) { srv.RevokeAll() }, []string{"revoked or has expired", "run 'pop2imap login' again"}},
		{"endpoint down", func(srv *oauthtest.Server, _ string) { srv.Close() }, []string{"could not be reached", "network"}},
		{"no file", func(_ *oauthtest.Server, file string) { os.Remove(file) }, []string{"no such file", "pop2imap login --token-file"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := oauthtest.Start(t, oauthtest.Config{})
			_, _, refresh := srv.Grant("u")
			file := filepath.Join(t.TempDir(), "t.json")
			// An access token that has expired: the login needs a refresh.
			if err := oauthtoken.WriteFile(file, &oauthtoken.Token{TokenURL: srv.TokenURL(), ClientID: srv.ClientID(),
				AccessToken: "old", Expiry: time.Now().Add(-time.Hour), RefreshToken: refresh}); err != nil {
				t.Fatal(err)
			}
			tt.break_(srv, file)
			code, stdout, stderr := runCLI(t, "migrate", "--pop3", "127.0.0.1:1", "--pop3-tls", "none", "--pop3-user", "u",
				"--pop3-oauth2-token-file", file, "--imap", "127.0.0.1:1", "--imap-tls", "none", "--imap-user", "v",
				"--state", filepath.Join(t.TempDir(), "j"), "--progress", "never", "--log-format", "json")
			line := lastLine(stderr)
			if code != exitError || !strings.HasPrefix(line, "pop2imap: ") {
				t.Fatalf("exit %d, last line %q\n%s", code, line, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(line, w) {
					t.Errorf("%q does not say %q", line, w)
				}
			}
			if strings.Contains(stdout+stderr, refresh) {
				t.Error("the output shows the refresh token")
			}
		})
	}
	code, _, stderr := runCLI(t, "migrate", "--pop3", "127.0.0.1:1", "--pop3-user", "u", "--pop3-oauth2-token-file", "a",
		"--pop3-password-file", "b", "--imap", "127.0.0.1:1", "--imap-user", "v")
	if code != exitUsage || !strings.Contains(stderr, "cannot be combined") {
		t.Errorf("token file with a password file: exit %d, %q; want exit 2", code, stderr)
	}
}
