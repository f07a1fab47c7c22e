package oauthtoken

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"html"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/oauth2"
)

// Provider is an authorization server and the scopes that mail access
// needs there.
type Provider struct {
	Name          string // "microsoft", "gmail", or "" for one given by URLs
	AuthURL       string // authorization endpoint, for LoopbackLogin
	DeviceAuthURL string // device authorization endpoint (RFC 8628), for DeviceLogin
	TokenURL      string
	Scopes        []string
	// AuthParams are added to the authorization URL of LoopbackLogin.
	AuthParams map[string]string
}

// Microsoft is Microsoft 365 and Outlook.com through the Microsoft identity
// platform v2.0 for tenant ("common", "organizations", "consumers", a
// tenant id or domain; "" means "common"): POP and IMAP access as the user,
// and offline_access for a refresh token.
func Microsoft(tenant string) Provider {
	if tenant == "" {
		tenant = "common"
	}
	base := "https://login.microsoftonline.com/" + url.PathEscape(tenant) + "/oauth2/v2.0/"
	return Provider{
		Name:          "microsoft",
		AuthURL:       base + "authorize",
		DeviceAuthURL: base + "devicecode",
		TokenURL:      base + "token",
		Scopes: []string{
			"https://outlook.office.com/IMAP.AccessAsUser.All",
			"https://outlook.office.com/POP.AccessAsUser.All",
			"offline_access",
		},
	}
}

// Google is Gmail. Its device flow does not grant the mail scope, so it
// logs in with LoopbackLogin. access_type=offline asks for a refresh token
// and prompt=consent asks for one again on a second login.
var Google = Provider{
	Name:     "gmail",
	AuthURL:  "https://accounts.google.com/o/oauth2/v2/auth",
	TokenURL: "https://oauth2.googleapis.com/token",
	Scopes:   []string{"https://mail.google.com/"},
	AuthParams: map[string]string{
		"access_type": "offline",
		"prompt":      "consent",
	},
}

// Login holds what a login needs besides the user.
type Login struct {
	Provider     Provider
	ClientID     string
	ClientSecret string // "" for a public client
	// Prompt is told what the user must do: open URL, and with the device
	// flow enter Code there. It is called once, before waiting.
	Prompt  func(Prompt)
	Options *Options
}

// Prompt is what the user must do to approve the login.
type Prompt struct {
	URL     string
	Code    string    // the user code of the device flow; "" for the loopback flow
	Expires time.Time // zero when unknown
}

func (l *Login) config(redirectURL string) *oauth2.Config {
	return &oauth2.Config{
		ClientID:     l.ClientID,
		ClientSecret: l.ClientSecret,
		Scopes:       l.Provider.Scopes,
		RedirectURL:  redirectURL,
		Endpoint: oauth2.Endpoint{
			AuthURL:       l.Provider.AuthURL,
			DeviceAuthURL: l.Provider.DeviceAuthURL,
			TokenURL:      l.Provider.TokenURL,
			AuthStyle:     oauth2.AuthStyleInParams,
		},
	}
}

func (l *Login) check(urls ...string) error {
	if l.ClientID == "" {
		return &Error{Op: "login", Reason: ReasonClient, Err: errors.New("no client id")}
	}
	for _, u := range append(urls, l.Provider.TokenURL) {
		if u == "" {
			return &Error{Op: "login", Reason: ReasonFile, Err: errors.New("an endpoint URL is missing")}
		}
		if err := checkEndpoint(u); err != nil {
			return &Error{Op: "login", Reason: ReasonFile, Err: err}
		}
	}
	return nil
}

func (l *Login) token(tok *oauth2.Token) (*Token, error) {
	if tok.RefreshToken == "" {
		return nil, &Error{Op: "login", Reason: ReasonServer,
			Err: errors.New("the server granted no refresh token; the scopes must include offline access")}
	}
	t := &Token{Version: fileVersion, Provider: l.Provider.Name, TokenURL: l.Provider.TokenURL,
		ClientID: l.ClientID, ClientSecret: l.ClientSecret, Scopes: l.Provider.Scopes}
	t.update(tok)
	return t, nil
}

func (l *Login) prompt(p Prompt) {
	if l.Prompt != nil {
		l.Prompt(p)
	}
}

// DeviceLogin runs the device authorization grant (RFC 8628): it asks for
// a user code, tells Prompt where to enter it, and polls the token
// endpoint at the interval the server gives until the user approves,
// refuses, or the code expires.
func DeviceLogin(ctx context.Context, l *Login) (*Token, error) {
	if err := l.check(l.Provider.DeviceAuthURL); err != nil {
		return nil, err
	}
	cfg := l.config("")
	hctx := context.WithValue(ctx, oauth2.HTTPClient, l.Options.httpClient())
	da, err := cfg.DeviceAuth(hctx)
	if err != nil {
		return nil, classify("device authorization", "", err)
	}
	uri := da.VerificationURIComplete
	if uri == "" {
		uri = da.VerificationURI
	}
	l.prompt(Prompt{URL: uri, Code: da.UserCode, Expires: da.Expiry})
	tok, err := cfg.DeviceAccessToken(hctx, da)
	if err != nil {
		// DeviceAccessToken stops at the code's expiry with the context's
		// deadline error, as at the caller's deadline; the server's
		// expired_token comes as itself. A request that timed out is the
		// server's failure.
		expired := ctx.Err() != nil || (!da.Expiry.IsZero() && !time.Now().Before(da.Expiry))
		if errors.Is(err, context.DeadlineExceeded) && expired && !errors.Is(ctx.Err(), context.Canceled) {
			return nil, &Error{Op: "device login", Reason: ReasonExpired, Err: err}
		}
		return nil, classify("device login", "", err)
	}
	return l.token(tok)
}

// LoopbackLogin runs the authorization code grant with PKCE (RFC 7636)
// and a loopback redirect (RFC 8252): it listens on 127.0.0.1 at a random
// port, tells Prompt the authorization URL to open, and accepts exactly
// one redirect that carries the state it sent. A redirect with another
// state is refused and the wait goes on; after the one that counts, the
// listener is closed. The wait ends with ctx.
func LoopbackLogin(ctx context.Context, l *Login) (*Token, error) {
	if err := l.check(l.Provider.AuthURL); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, &Error{Op: "redirect", Reason: ReasonFile, Err: err}
	}
	cfg := l.config("http://" + ln.Addr().String() + "/")
	state := randomState()
	verifier := oauth2.GenerateVerifier()
	opts := []oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}
	for k, v := range l.Provider.AuthParams {
		opts = append(opts, oauth2.SetAuthURLParam(k, v))
	}

	type result struct {
		code string
		err  error
	}
	done := make(chan result, 1)
	var mu sync.Mutex
	accepted := false // guarded by mu
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		q := r.URL.Query()
		if accepted || r.URL.Path != "/" || q.Get("state") != state {
			// Not the redirect we are waiting for: a stray request, a
			// replay, or a forged one from another page. It changes
			// nothing.
			http.Error(w, "pop2imap: this is not the expected login redirect", http.StatusBadRequest)
			return
		}
		accepted = true
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		if e := q.Get("error"); e != "" {
			fmt.Fprintf(w, "<p>pop2imap: the login failed (%s). You can close this page.</p>\n", html.EscapeString(printable(e)))
			done <- result{err: &Error{Op: "redirect", Reason: redirectReason(e), Code: printable(e),
				Description: printable(q.Get("error_description")), Err: errors.New("the authorization server returned an error")}}
			return
		}
		fmt.Fprint(w, "<p>pop2imap: login received. You can close this page and return to the terminal.</p>\n")
		done <- result{code: q.Get("code")}
	})}
	go srv.Serve(ln)
	defer srv.Close()
	// stop closes the listener at once, and lets the one page being
	// written reach the browser.
	stop := func() {
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	}

	l.prompt(Prompt{URL: cfg.AuthCodeURL(state, opts...)})
	var res result
	select {
	case <-ctx.Done():
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return nil, &Error{Op: "redirect", Reason: ReasonExpired, Err: ctx.Err()}
		}
		return nil, ctx.Err()
	case res = <-done:
	}
	stop() // exactly one redirect: nothing more is accepted
	if res.err != nil {
		return nil, res.err
	}
	if res.code == "" {
		return nil, &Error{Op: "redirect", Reason: ReasonServer, Err: errors.New("the redirect carried no code")}
	}
	hctx := context.WithValue(ctx, oauth2.HTTPClient, l.Options.httpClient())
	tok, err := cfg.Exchange(hctx, res.code, oauth2.VerifierOption(verifier))
	if err != nil {
		return nil, classify("code exchange", "", err)
	}
	return l.token(tok)
}

func redirectReason(code string) Reason {
	switch code {
	case "access_denied":
		return ReasonDenied
	case "invalid_client", "unauthorized_client":
		return ReasonClient
	}
	return ReasonServer
}

// randomState is the unguessable state parameter that ties the redirect to
// this login (RFC 6749 section 10.12).
func randomState() string {
	b := make([]byte, 24)
	rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}
