package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/pop2imap/pop2imap/internal/dovecottest"
)

// introspector is the OAuth2 token introspection endpoint (RFC 7662) that
// Dovecot's oauth2 passdb asks about every token: "tok-USER" is a valid
// token for USER, anything else is inactive.
type introspector struct {
	srv  *httptest.Server
	mu   sync.Mutex
	seen []string // tokens asked about, in order
}

func newIntrospector(t *testing.T) *introspector {
	t.Helper()
	in := &introspector{}
	in.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm() // Dovecot POSTs token=...&client_id=&client_secret=
		tok := r.FormValue("token")
		in.mu.Lock()
		in.seen = append(in.seen, tok)
		in.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		if user, ok := strings.CutPrefix(tok, "tok-"); ok {
			fmt.Fprintf(w, `{"active":true,"username":%q}`, user)
			return
		}
		fmt.Fprint(w, `{"active":false}`)
	}))
	t.Cleanup(in.srv.Close)
	return in
}

func (in *introspector) tokens() []string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]string(nil), in.seen...)
}

// startOAuthDovecot starts a Dovecot that, besides the usual password
// mechanisms and APOP, takes XOAUTH2 and OAUTHBEARER tokens on POP3 and IMAP
// and checks them with the introspector over loopback HTTP.
func startOAuthDovecot(t *testing.T) (*dovecottest.Server, *introspector) {
	t.Helper()
	in := newIntrospector(t)
	return startIntrospectingDovecot(t, in.srv.URL+"/introspect"), in
}

// startIntrospectingDovecot starts a Dovecot whose oauth2 passdb checks
// tokens at introspectURL.
func startIntrospectingDovecot(t *testing.T, introspectURL string) *dovecottest.Server {
	t.Helper()
	dir, err := os.MkdirTemp("", "pop2imap-oauth-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755) // Dovecot's auth process reads the file as another user
	conf := filepath.Join(dir, "oauth2.conf.ext")
	if err := os.WriteFile(conf, []byte("introspection_url = "+introspectURL+"\n"+
		"introspection_mode = post\nusername_attribute = username\n"+
		"active_attribute = active\nactive_value = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return dovecottest.StartWith(t, dovecottest.Options{ExtraConfig: strings.Join([]string{
		"auth_mechanisms = plain login apop xoauth2 oauthbearer",
		"passdb {",
		"  driver = oauth2",
		"  mechanisms = xoauth2 oauthbearer",
		"  args = " + conf,
		"}",
	}, "\n")})
}

// loginMethods returns the "method=" of every login Dovecot logged for user.
func loginMethods(t *testing.T, d *dovecottest.Server, proto, user string) []string {
	t.Helper()
	data, err := os.ReadFile(d.LogFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(data), "\n") {
		if !strings.Contains(line, proto+"-login: Info: Login: user=<"+user+">") {
			continue
		}
		if _, rest, ok := strings.Cut(line, "method="); ok {
			method, _, _ := strings.Cut(rest, ",")
			out = append(out, method)
		}
	}
	return out
}

// TestDovecotAuthMechanisms runs the built binary against Dovecot with each
// login mechanism forced on each side, across the TLS modes, and checks in
// Dovecot's log that each login used what was forced: USER/PASS, APOP, AUTH
// PLAIN, AUTH LOGIN, XOAUTH2 and OAUTHBEARER on POP3; LOGIN, AUTHENTICATE
// PLAIN, XOAUTH2 and OAUTHBEARER on IMAP. Dovecot logs both USER/PASS and
// IMAP LOGIN as method=PLAIN.
func TestDovecotAuthMechanisms(t *testing.T) {
	d, in := startOAuthDovecot(t)
	bin := buildBinary(t)
	corpus := integrationCorpus(t, 5)
	tests := []struct {
		pop3Auth, imapAuth   string // "" leaves auto
		pop3Token, imapToken bool   // use --*-oauth2-token-cmd
		tls                  string
		extra                []string
		wantPOP3, wantIMAP   string // Dovecot's method=
	}{
		{"user", "login", false, false, "implicit", nil, "PLAIN", "PLAIN"},
		{"apop", "plain", false, false, "starttls", nil, "APOP", "PLAIN"},
		{"plain", "login", false, false, "none", nil, "PLAIN", "PLAIN"},
		{"login", "plain", false, false, "implicit", []string{"--tls-server-name", "localhost"}, "LOGIN", "PLAIN"},
		{"xoauth2", "xoauth2", true, true, "starttls", nil, "XOAUTH2", "XOAUTH2"},
		{"oauthbearer", "oauthbearer", true, true, "implicit", nil, "OAUTHBEARER", "OAUTHBEARER"},
		{"", "", true, false, "none", nil, "XOAUTH2", "PLAIN"},
		{"", "", false, true, "implicit", nil, "PLAIN", "XOAUTH2"},
		{"oauthbearer", "xoauth2", false, false, "starttls", nil, "OAUTHBEARER", "XOAUTH2"}, // tokens from the environment
	}
	for i, tt := range tests {
		name := fmt.Sprintf("pop3=%s,imap=%s,%s", or(tt.pop3Auth, "auto"), or(tt.imapAuth, "auto"), tt.tls)
		t.Run(name, func(t *testing.T) {
			src, dst := fmt.Sprintf("msrc%d", i), fmt.Sprintf("mdst%d", i)
			d.AddUser(t, src, "pop-pass-"+src)
			d.AddUser(t, dst, "imap-pass-"+dst)
			d.SeedMaildrop(t, src, corpus)
			pop3Addr, imapAddr := d.POP3Addr, d.IMAPAddr
			if tt.tls == "implicit" {
				pop3Addr, imapAddr = d.POP3SAddr, d.IMAPSAddr
			}
			args := []string{"migrate", "--pop3", pop3Addr, "--pop3-user", src, "--pop3-tls", tt.tls,
				"--imap", imapAddr, "--imap-user", dst, "--imap-tls", tt.tls, "--ca-file", d.CAFile,
				"--folder", "Migrated", "--state", filepath.Join(t.TempDir(), "journal"), "--progress", "never"}
			env := append(os.Environ(), "POP2IMAP_POP3_PASSWORD=pop-pass-"+src, "POP2IMAP_IMAP_PASSWORD=imap-pass-"+dst)
			if tt.pop3Auth != "" {
				args = append(args, "--pop3-auth", tt.pop3Auth)
			}
			if tt.imapAuth != "" {
				args = append(args, "--imap-auth", tt.imapAuth)
			}
			if tt.pop3Token {
				args = append(args, "--pop3-oauth2-token-cmd", "echo tok-"+src)
			} else if strings.Contains(tt.wantPOP3, "OAUTH") {
				env = append(env, "POP2IMAP_POP3_PASSWORD=tok-"+src)
			}
			if tt.imapToken {
				args = append(args, "--imap-oauth2-token-cmd", "echo tok-"+dst)
			} else if strings.Contains(tt.wantIMAP, "OAUTH") {
				env = append(env, "POP2IMAP_IMAP_PASSWORD=tok-"+dst)
			}
			cmd := exec.Command(bin, append(args, tt.extra...)...)
			cmd.Env = env
			out, _ := cmd.CombinedOutput()
			if code := cmd.ProcessState.ExitCode(); code != 0 {
				t.Fatalf("migrate: exit %d\n%s", code, out)
			}
			got := d.FetchAll(t, dst, "imap-pass-"+dst, "Migrated")
			if len(got) != len(corpus) {
				t.Errorf("%d messages arrived, want %d", len(got), len(corpus))
			}
			if m := loginMethods(t, d, "pop3", src); len(m) == 0 || m[0] != tt.wantPOP3 {
				t.Errorf("POP3 logins of %s used %v, want %s", src, m, tt.wantPOP3)
			}
			if m := loginMethods(t, d, "imap", dst); len(m) == 0 || m[0] != tt.wantIMAP {
				t.Errorf("IMAP logins of %s used %v, want %s", dst, m, tt.wantIMAP)
			}
		})
	}
	if len(in.tokens()) == 0 {
		t.Error("the introspection endpoint was never asked: no OAuth2 login reached Dovecot's oauth2 passdb")
	}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// TestDovecotTokenRefresh: a token command that prints an expired token
// first and a good one after: the login is refused once, the command runs
// again, and the migration goes through, on both sides.
func TestDovecotTokenRefresh(t *testing.T) {
	d, in := startOAuthDovecot(t)
	bin := buildBinary(t)
	d.AddUser(t, "rsrc", "unused-pop")
	d.AddUser(t, "rdst", "unused-imap")
	corpus := integrationCorpus(t, 3)
	d.SeedMaildrop(t, "rsrc", corpus)
	dir := t.TempDir()
	// Prints "expired-token" the first time it runs, then tok-USER.
	tokenCmd := func(user string) string {
		counter := filepath.Join(dir, user+".count")
		return fmt.Sprintf(`if [ -e %[1]s ]; then echo tok-%[2]s; else touch %[1]s; echo expired-token; fi`, counter, user)
	}
	cmd := exec.Command(bin, "migrate", "--pop3", d.POP3SAddr, "--pop3-user", "rsrc",
		"--imap", d.IMAPSAddr, "--imap-user", "rdst", "--ca-file", d.CAFile,
		"--pop3-oauth2-token-cmd", tokenCmd("rsrc"), "--imap-oauth2-token-cmd", tokenCmd("rdst"),
		"--state", filepath.Join(dir, "journal"), "--progress", "never")
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("migrate: exit %d\n%s", code, out)
	}
	if got := d.FetchAll(t, "rdst", "unused-imap", "INBOX"); len(got) != len(corpus) {
		t.Errorf("%d messages arrived, want %d", len(got), len(corpus))
	}
	seen := strings.Join(in.tokens(), " ")
	for _, want := range []string{"expired-token", "tok-rsrc", "tok-rdst"} {
		if !strings.Contains(seen, want) {
			t.Errorf("Dovecot never checked %q (saw %s)", want, seen)
		}
	}
	if strings.Contains(string(out), "tok-") || strings.Contains(string(out), "expired-token") {
		t.Errorf("output shows a token:\n%s", out)
	}
}

// TestDovecotTokenRefused: a token command whose tokens are never good ends
// in exit 1 with one line that names the mechanism, says the token was
// refused, and shows no token.
func TestDovecotTokenRefused(t *testing.T) {
	d, _ := startOAuthDovecot(t)
	bin := buildBinary(t)
	d.AddUser(t, "bsrc", "pop-pass")
	d.AddUser(t, "bdst", "imap-pass")
	cmd := exec.Command(bin, "migrate", "--pop3", d.POP3SAddr, "--pop3-user", "bsrc",
		"--imap", d.IMAPSAddr, "--imap-user", "bdst", "--ca-file", d.CAFile,
		"--pop3-oauth2-token-cmd", "echo never-good", "--state", filepath.Join(t.TempDir(), "j"), "--progress", "never")
	cmd.Env = append(os.Environ(), "POP2IMAP_IMAP_PASSWORD=imap-pass")
	out, _ := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != exitError {
		t.Fatalf("exit %d, want %d\n%s", code, exitError, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	last := lines[len(lines)-1]
	for _, want := range []string{"AUTH XOAUTH2", "refused the token"} {
		if !strings.Contains(last, want) {
			t.Errorf("last line %q does not say %q", last, want)
		}
	}
	if strings.Contains(string(out), "never-good") {
		t.Errorf("output shows the token:\n%s", out)
	}
}

// TestAuthFlags: mistakes with the login flags are usage errors, and every
// mechanism that sends the secret as it is refuses an unencrypted link to a
// remote host before connecting, saying why and what to do.
func TestAuthFlags(t *testing.T) {
	t.Setenv("POP2IMAP_POP3_PASSWORD", testPOP3Pass)
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	base := []string{"migrate", "--pop3", "127.0.0.1:1", "--pop3-user", "a", "--imap", "127.0.0.1:1", "--imap-user", "b"}
	remotePOP3 := []string{"migrate", "--pop3", "pop.example.com", "--pop3-tls", "none", "--pop3-user", "a",
		"--imap", "127.0.0.1:1", "--imap-user", "b"}
	remoteIMAP := []string{"migrate", "--pop3", "127.0.0.1:1", "--pop3-user", "a",
		"--imap", "imap.example.com", "--imap-tls", "none", "--imap-user", "b"}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"unknown pop3 mechanism", append(base, "--pop3-auth", "cram-md5"), []string{"--pop3-auth", "apop"}},
		{"apop is not imap", append(base, "--imap-auth", "apop"), []string{"--imap-auth"}},
		{"token and password command", append(base, "--pop3-oauth2-token-cmd", "x", "--pop3-password-cmd", "y"), []string{"--pop3-oauth2-token-cmd"}},
		{"token with a password mechanism", append(base, "--imap-oauth2-token-cmd", "x", "--imap-auth", "login"), []string{"--imap-auth login", "xoauth2"}},
		{"verify has the same checks", append([]string{"verify"}, append(base[1:], "--pop3-auth", "bogus")...), []string{"--pop3-auth"}},
	}
	for _, m := range []string{"user", "plain", "login", "xoauth2", "oauthbearer", "auto"} {
		tests = append(tests, struct {
			name string
			args []string
			want []string
		}{"remote pop3 " + m, append(remotePOP3, "--pop3-auth", m), []string{"unencrypted", "--allow-insecure-auth"}})
	}
	for _, m := range []string{"login", "plain", "xoauth2", "oauthbearer", "auto"} {
		tests = append(tests, struct {
			name string
			args []string
			want []string
		}{"remote imap " + m, append(remoteIMAP, "--imap-auth", m), []string{"unencrypted", "--allow-insecure-auth"}})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCLI(t, tt.args...)
			if code != exitUsage {
				t.Errorf("exit %d, want %d; stderr: %s", code, exitUsage, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr %q does not mention %q", stderr, w)
				}
			}
		})
	}
}

// TestTokenWithoutSource: a forced OAuth2 mechanism with no token anywhere
// names the token command flag.
func TestTokenWithoutSource(t *testing.T) {
	t.Setenv("POP2IMAP_POP3_PASSWORD", "")
	t.Setenv("POP2IMAP_IMAP_PASSWORD", testIMAPPass)
	code, _, stderr := runCLI(t, "migrate", "--pop3", "127.0.0.1", "--pop3-user", "a", "--pop3-auth", "xoauth2",
		"--imap", "127.0.0.1", "--imap-user", "b")
	if code != exitUsage || !strings.Contains(stderr, "--pop3-oauth2-token-cmd") || !strings.Contains(stderr, "OAuth2 token") {
		t.Errorf("exit %d, stderr %q: want exit 2 naming --pop3-oauth2-token-cmd", code, stderr)
	}
}
