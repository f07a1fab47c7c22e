package oauthtoken_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/oauthtest"
	"github.com/pop2imap/pop2imap/internal/oauthtoken"
)

func provider(srv *oauthtest.Server) oauthtoken.Provider {
	return oauthtoken.Provider{Name: "test", DeviceAuthURL: srv.DeviceURL(), AuthURL: srv.AuthURL(),
		TokenURL: srv.TokenURL(), Scopes: []string{"mail", "offline_access"}}
}

// grantFile writes a token file for user as a login would have.
func grantFile(t *testing.T, srv *oauthtest.Server, user string) (path, refresh string) {
	t.Helper()
	access, expiry, refresh := srv.Grant(user)
	path = filepath.Join(t.TempDir(), "tokens.json")
	err := oauthtoken.WriteFile(path, &oauthtoken.Token{TokenURL: srv.TokenURL(), ClientID: srv.ClientID(),
		AccessToken: access, Expiry: expiry, RefreshToken: refresh, TokenType: "Bearer"})
	if err != nil {
		t.Fatal(err)
	}
	return path, refresh
}

func wantReason(t *testing.T, err error, want oauthtoken.Reason, secrets ...string) *oauthtoken.Error {
	t.Helper()
	var oe *oauthtoken.Error
	if !errors.As(err, &oe) {
		t.Fatalf("err = %v (%T), want *oauthtoken.Error with reason %v", err, err, want)
	}
	if oe.Reason != want {
		t.Fatalf("reason = %v, want %v (err: %v)", oe.Reason, want, err)
	}
	msg := err.Error()
	if strings.ContainsAny(msg, "\r\n") {
		t.Errorf("error is not one line: %q", msg)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(msg+oe.Hint(), s) {
			t.Errorf("error shows a secret: %s", msg)
		}
	}
	return oe
}

// TestDeviceLoginRefreshRotation: the device flow gets tokens; the file is
// private; the access token is used as it is until it is within a minute of
// expiry, then refreshed, and the rotated refresh token is saved so that a
// second refresh works (the old one is dead on the server).
func TestDeviceLoginRefreshRotation(t *testing.T) {
	srv := oauthtest.Start(t, oauthtest.Config{Rotate: true})
	var prompted oauthtoken.Prompt
	tok, err := oauthtoken.DeviceLogin(context.Background(), &oauthtoken.Login{
		Provider: provider(srv), ClientID: srv.ClientID(),
		Prompt: func(p oauthtoken.Prompt) { prompted = p; srv.Approve(p.Code, "alice") },
	})
	if err != nil {
		t.Fatal(err)
	}
	if prompted.Code == "" || !strings.HasSuffix(prompted.URL, "/verify") {
		t.Errorf("prompt = %+v, want a user code and the verification URL", prompted)
	}
	if !strings.HasPrefix(tok.AccessToken, "at-alice-") || tok.RefreshToken == "" || tok.TokenURL != srv.TokenURL() {
		t.Fatalf("token = %+v", tok)
	}
	path := filepath.Join(t.TempDir(), "t.json")
	if err := oauthtoken.WriteFile(path, tok); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode = %v, %v; want 0600", fi.Mode(), err)
	}

	now := time.Now()
	src, err := oauthtoken.Open(path, &oauthtoken.Options{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	got, err := src.AccessToken(context.Background())
	if err != nil || got != tok.AccessToken || srv.Refreshes() != 0 {
		t.Fatalf("AccessToken = %q, %v after %d refreshes; want the stored token without a refresh", got, err, srv.Refreshes())
	}
	for i := 1; i <= 2; i++ {
		now = now.Add(time.Hour - 30*time.Second) // within a minute of the expiry
		fresh, err := src.AccessToken(context.Background())
		if err != nil {
			t.Fatalf("refresh %d: %v", i, err)
		}
		if fresh == got || srv.Refreshes() != i {
			t.Fatalf("refresh %d: token %q (was %q), %d refreshes", i, fresh, got, srv.Refreshes())
		}
		got = fresh
		saved, err := oauthtoken.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if saved.AccessToken != fresh || !slices.Equal(srv.ValidRefreshTokens(), []string{saved.RefreshToken}) {
			t.Fatalf("refresh %d: the file holds %q and a refresh token the server does not know as the live one", i, saved.AccessToken)
		}
	}
}

// TestRefreshWhenRefused: a token the server refused is replaced even
// though its expiry says it is good; a refused token that another process
// already replaced in the file costs no refresh.
func TestRefreshWhenRefused(t *testing.T) {
	srv := oauthtest.Start(t, oauthtest.Config{Rotate: true})
	path, _ := grantFile(t, srv, "bob")
	src, err := oauthtoken.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := src.AccessToken(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	second, err := src.Refresh(context.Background(), first)
	if err != nil || second == first || srv.Refreshes() != 1 {
		t.Fatalf("Refresh(refused) = %q, %v, %d refreshes; want a new token from one refresh", second, err, srv.Refreshes())
	}
	again, err := src.Refresh(context.Background(), first)
	if err != nil || again != second || srv.Refreshes() != 1 {
		t.Fatalf("Refresh(old refused) = %q, %v, %d refreshes; want the file's newer token and no refresh", again, err, srv.Refreshes())
	}
}

// TestRefreshErrors: each way a refresh fails gives a typed error whose
// reason says what fixes it, in one line without the refresh token.
func TestRefreshErrors(t *testing.T) {
	tests := []struct {
		name   string
		break_ func(srv *oauthtest.Server, path string)
		want   oauthtoken.Reason
		hint   string
	}{
		{"revoked refresh token", func(srv *oauthtest.Server, _ string) { srv.RevokeAll() }, oauthtoken.ReasonRevoked, "pop2imap login"},
		{"wrong client id", func(srv *oauthtest.Server, path string) {
			tok, _ := oauthtoken.ReadFile(path)
			tok.ClientID = "not-registered"
			oauthtoken.WriteFile(path, tok)
		}, oauthtoken.ReasonClient, "client id"},
		{"endpoint down", func(srv *oauthtest.Server, _ string) { srv.Close() }, oauthtoken.ReasonUnreachable, "network"},
		{"endpoint answers html", func(srv *oauthtest.Server, _ string) { srv.SetFailing(true) }, oauthtoken.ReasonUnreachable, "network"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := oauthtest.Start(t, oauthtest.Config{})
			path, refresh := grantFile(t, srv, "carol")
			src, err := oauthtoken.Open(path, &oauthtoken.Options{Now: func() time.Time { return time.Now().Add(2 * time.Hour) }})
			if err != nil {
				t.Fatal(err)
			}
			tt.break_(srv, path)
			_, err = src.AccessToken(context.Background())
			oe := wantReason(t, err, tt.want, refresh)
			if !strings.Contains(oe.Hint(), tt.hint) {
				t.Errorf("hint %q does not mention %q", oe.Hint(), tt.hint)
			}
			if after, rerr := oauthtoken.ReadFile(path); rerr != nil || after.RefreshToken != refresh {
				t.Errorf("a failed refresh changed the token file: %v", rerr)
			}
		})
	}
}

// TestDeviceLoginErrors: a wrong client id, a user who declines and a code
// that expires each end the login with their own reason.
func TestDeviceLoginErrors(t *testing.T) {
	tests := []struct {
		name     string
		clientID string
		expires  time.Duration
		act      func(srv *oauthtest.Server, code string)
		want     oauthtoken.Reason
	}{
		{"wrong client id", "nobody", 0, nil, oauthtoken.ReasonClient},
		{"user declines", "", 0, func(srv *oauthtest.Server, code string) { srv.Deny(code) }, oauthtoken.ReasonDenied},
		{"code expires", "", time.Second, func(*oauthtest.Server, string) {}, oauthtoken.ReasonExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := oauthtest.Start(t, oauthtest.Config{DeviceExpiresIn: tt.expires})
			id := tt.clientID
			if id == "" {
				id = srv.ClientID()
			}
			prompted := false
			_, err := oauthtoken.DeviceLogin(context.Background(), &oauthtoken.Login{
				Provider: provider(srv), ClientID: id,
				Prompt: func(p oauthtoken.Prompt) { prompted = true; tt.act(srv, p.Code) },
			})
			wantReason(t, err, tt.want)
			if prompted != (tt.act != nil) {
				t.Errorf("prompted = %v", prompted)
			}
		})
	}
}

// browse plays the browser: it opens the authorization URL and follows the
// redirect to the loopback listener, returning the listener's status.
func browse(t *testing.T, authURL string) int {
	t.Helper()
	resp, err := http.Get(authURL)
	if err != nil {
		t.Errorf("browser: %v", err)
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestLoopbackLogin: the authorization URL carries a PKCE S256 challenge
// and a state; a redirect with a wrong state is refused with 400 and
// changes nothing; the right one is accepted and exchanged with the
// verifier; after it the listener is gone.
func TestLoopbackLogin(t *testing.T) {
	srv := oauthtest.Start(t, oauthtest.Config{ClientSecret: "desktop-secret"})
	srv.SetLoginUser("dave", false)
	var redirectURI string
	var wrongStatus int
	rightStatus := make(chan int, 1)
	tok, err := oauthtoken.LoopbackLogin(context.Background(), &oauthtoken.Login{
		Provider: provider(srv), ClientID: srv.ClientID(), ClientSecret: "desktop-secret",
		Prompt: func(p oauthtoken.Prompt) {
			u, err := url.Parse(p.URL)
			if err != nil {
				t.Error(err)
				return
			}
			q := u.Query()
			redirectURI = q.Get("redirect_uri")
			if q.Get("code_challenge_method") != "S256" || q.Get("state") == "" || !strings.HasPrefix(redirectURI, "http://127.0.0.1:") {
				t.Errorf("authorization URL lacks PKCE, state or a loopback redirect: %s", p.URL)
			}
			// A forged redirect first: right shape, wrong state.
			resp, err := http.Get(redirectURI + "?code=forged&state=wrong")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			wrongStatus = resp.StatusCode
			go func() { rightStatus <- browse(t, p.URL) }()
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	if wrongStatus != http.StatusBadRequest {
		t.Errorf("redirect with a wrong state: status %d, want 400", wrongStatus)
	}
	if !strings.HasPrefix(tok.AccessToken, "at-dave-") || tok.RefreshToken == "" || tok.ClientSecret != "desktop-secret" {
		t.Errorf("token = %v, want dave's with a refresh token and the client secret kept", tok)
	}
	if _, err := http.Get(redirectURI + "?code=late&state=x"); err == nil {
		t.Error("the loopback listener still answers after the login")
	}
	if st := <-rightStatus; st != http.StatusOK {
		t.Errorf("the browser got status %d for the right redirect, want 200", st)
	}
}

// TestLoopbackLoginDenied: a redirect with error=access_denied and the
// right state ends the login as denied.
func TestLoopbackLoginDenied(t *testing.T) {
	srv := oauthtest.Start(t, oauthtest.Config{})
	srv.SetLoginUser("erin", true)
	browsed := make(chan int, 1)
	_, err := oauthtoken.LoopbackLogin(context.Background(), &oauthtoken.Login{
		Provider: provider(srv), ClientID: srv.ClientID(),
		Prompt: func(p oauthtoken.Prompt) { go func() { browsed <- browse(t, p.URL) }() },
	})
	wantReason(t, err, oauthtoken.ReasonDenied)
	<-browsed
}

// TestLoopbackLoginTimeout: no redirect before the deadline is an expired
// login, not a hang.
func TestLoopbackLoginTimeout(t *testing.T) {
	srv := oauthtest.Start(t, oauthtest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := oauthtoken.LoopbackLogin(ctx, &oauthtoken.Login{Provider: provider(srv), ClientID: srv.ClientID()})
	wantReason(t, err, oauthtoken.ReasonExpired)
}

// TestReadFileRefuses: files that are not private, not token files, or
// would send the refresh token in clear to another host are refused.
func TestReadFileRefuses(t *testing.T) {
	dir := t.TempDir()
	good := `{"version":1,"token_url":"https://login.example/token","client_id":"c","access_token":"a","refresh_token":"SECRET-RT"}`
	tests := []struct {
		name, content string
		mode          os.FileMode
	}{
		{"readable by others", good, 0o644},
		{"not json", "SECRET-RT\n", 0o600},
		{"unknown field", strings.Replace(good, `"version"`, `"extra":1,"version"`, 1), 0o600},
		{"no refresh token", strings.Replace(good, `"SECRET-RT"`, `""`, 1), 0o600},
		{"plain http", strings.Replace(good, "https://login.example", "http://login.example", 1), 0o600},
		{"future version", strings.Replace(good, `"version":1`, `"version":2`, 1), 0o600},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(dir, strings.ReplaceAll(tt.name, " ", "-"))
			if err := os.WriteFile(p, []byte(tt.content), tt.mode); err != nil {
				t.Fatal(err)
			}
			os.Chmod(p, tt.mode)
			_, err := oauthtoken.Open(p, nil)
			wantReason(t, err, oauthtoken.ReasonFile, "SECRET-RT")
		})
	}
	p := filepath.Join(dir, "ok")
	os.WriteFile(p, []byte(good), 0o600)
	if _, err := oauthtoken.Open(p, nil); err != nil {
		t.Errorf("a good file was refused: %v", err)
	}
	tok, _ := oauthtoken.ReadFile(p)
	if s := fmt.Sprintf("%v %+v %#v %s", tok, *tok, tok, *tok); strings.Contains(s, "SECRET-RT") {
		t.Errorf("printing a Token shows the refresh token: %s", s)
	}
}

// TestConcurrentRefreshGoroutines: goroutines that all find the token stale
// at once never spend a rotated refresh token twice: every refresh
// succeeds and the file ends with the one live refresh token.
func TestConcurrentRefreshGoroutines(t *testing.T) {
	// expires_in under a minute: every call refreshes.
	srv := oauthtest.Start(t, oauthtest.Config{Rotate: true, ExpiresIn: 30 * time.Second})
	path, _ := grantFile(t, srv, "frank")
	const workers, each = 8, 5
	var wg sync.WaitGroup
	errs := make(chan error, workers*each)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			src, err := oauthtoken.Open(path, nil)
			if err != nil {
				errs <- err
				return
			}
			for range each {
				if _, err := src.AccessToken(context.Background()); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkFinal(t, srv, path, workers*each)
}

func checkFinal(t *testing.T, srv *oauthtest.Server, path string, refreshes int) {
	t.Helper()
	if n := srv.Refreshes(); n != refreshes {
		t.Errorf("%d refreshes, want %d", n, refreshes)
	}
	tok, err := oauthtoken.ReadFile(path)
	if err != nil {
		t.Fatalf("the token file is damaged: %v", err)
	}
	if !slices.Equal(srv.ValidRefreshTokens(), []string{tok.RefreshToken}) {
		t.Error("the file does not hold the one refresh token the server accepts: a rotation was lost")
	}
	if m, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".*tmp*")); len(m) > 0 {
		t.Errorf("temporary files left behind: %v", m)
	}
}

const helperEnv = "OAUTHTOKEN_TEST_HELPER"

// TestConcurrentRefreshProcesses: the same with separate processes (this
// test binary run again), which share nothing but the file and its lock.
func TestConcurrentRefreshProcesses(t *testing.T) {
	if os.Getenv(helperEnv) != "" {
		t.Skip("helper")
	}
	srv := oauthtest.Start(t, oauthtest.Config{Rotate: true, ExpiresIn: 30 * time.Second})
	path, _ := grantFile(t, srv, "grace")
	const procs, each = 4, 5
	var wg sync.WaitGroup
	for i := range procs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(os.Args[0], "-test.run=^TestRefreshHelper$", "-test.count=1")
			cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s|%d", helperEnv, path, each))
			if out, err := cmd.CombinedOutput(); err != nil {
				t.Errorf("process %d: %v\n%s", i, err, out)
			}
		}()
	}
	wg.Wait()
	checkFinal(t, srv, path, procs*each)
}

// TestRefreshHelper is the child of TestConcurrentRefreshProcesses.
func TestRefreshHelper(t *testing.T) {
	spec := os.Getenv(helperEnv)
	if spec == "" {
		t.Skip("run by TestConcurrentRefreshProcesses")
	}
	path, n, _ := strings.Cut(spec, "|")
	var each int
	fmt.Sscan(n, &each)
	src, err := oauthtoken.Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	for range each {
		if _, err := src.AccessToken(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// TestDeviceLoginTimeout: the caller's deadline passing while the user has
// not approved is an expired login, not an unreachable server.
func TestDeviceLoginTimeout(t *testing.T) {
	srv := oauthtest.Start(t, oauthtest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err := oauthtoken.DeviceLogin(ctx, &oauthtoken.Login{Provider: provider(srv), ClientID: srv.ClientID()})
	wantReason(t, err, oauthtoken.ReasonExpired)
}
