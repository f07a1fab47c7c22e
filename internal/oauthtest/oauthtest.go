// Package oauthtest is an in-process OAuth2 authorization server for tests:
// device authorization (RFC 8628), authorization code with PKCE (RFC 7636),
// refresh with rotation, and token introspection (RFC 7662) as Dovecot's
// oauth2 passdb asks it. Access tokens expire by the clock and, optionally,
// after a number of introspections, so that a test can make a token go
// stale in the middle of a run without waiting.
package oauthtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"
)

// Config sets the server's behaviour; the zero value gives tokens valid
// for an hour and refresh tokens that are not rotated.
type Config struct {
	ClientID     string // "" means "test-client"
	ClientSecret string // when set, required at the token endpoint
	// ExpiresIn is the expires_in handed out with each access token;
	// 0 means one hour.
	ExpiresIn time.Duration
	// Uses makes an access token inactive after this many introspections
	// (0: no limit), whatever its expiry says.
	Uses int
	// Rotate issues a new refresh token at each refresh and makes the old
	// one invalid at once, as Microsoft and strict servers do.
	Rotate bool
	// DeviceExpiresIn is the life of a device code; 0 means ten minutes.
	DeviceExpiresIn time.Duration
	// AutoApprove approves every device login at once for this user, and
	// AutoDeny refuses it, for tests that cannot reach the prompt.
	AutoApprove string
	AutoDeny    bool
}

// Server is the fake authorization server.
type Server struct {
	cfg Config
	srv *httptest.Server

	mu        sync.Mutex
	refresh   map[string]string // valid refresh token -> user
	access    map[string]*accessToken
	devices   map[string]*device // device code -> device
	userCodes map[string]string  // user code -> device code
	codes     map[string]*authCode
	loginUser string // the user the authorization endpoint logs in
	denyNext  bool
	refreshes int
	active    int // introspections that found the token live
	inactive  int
	fail      bool // answer 503 at the token endpoint
}

type accessToken struct {
	user    string
	expires time.Time
	uses    int
}

type device struct {
	user     string // set when approved
	denied   bool
	expires  time.Time
	lastPoll time.Time
}

type authCode struct {
	user, challenge, redirect string
}

// Start starts the server on 127.0.0.1; it stops when the test ends.
func Start(t interface{ Cleanup(func()) }, cfg Config) *Server {
	if cfg.ClientID == "" {
		cfg.ClientID = "test-client"
	}
	if cfg.ExpiresIn == 0 {
		cfg.ExpiresIn = time.Hour
	}
	if cfg.DeviceExpiresIn == 0 {
		cfg.DeviceExpiresIn = 10 * time.Minute
	}
	s := &Server{cfg: cfg, refresh: map[string]string{}, access: map[string]*accessToken{},
		devices: map[string]*device{}, userCodes: map[string]string{}, codes: map[string]*authCode{},
		loginUser: "user"}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /device", s.handleDevice)
	mux.HandleFunc("GET /authorize", s.handleAuthorize)
	mux.HandleFunc("POST /token", s.handleToken)
	mux.HandleFunc("POST /introspect", s.handleIntrospect)
	s.srv = httptest.NewServer(mux)
	t.Cleanup(s.srv.Close)
	return s
}

// URLs of the endpoints.
func (s *Server) DeviceURL() string     { return s.srv.URL + "/device" }
func (s *Server) AuthURL() string       { return s.srv.URL + "/authorize" }
func (s *Server) TokenURL() string      { return s.srv.URL + "/token" }
func (s *Server) IntrospectURL() string { return s.srv.URL + "/introspect" }
func (s *Server) ClientID() string      { return s.cfg.ClientID }

// Close stops the server, so that its endpoints become unreachable.
func (s *Server) Close() { s.srv.Close() }

// Approve approves the device login with userCode for user.
func (s *Server) Approve(userCode, user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.devices[s.userCodes[userCode]]; d != nil {
		d.user = user
	}
}

// Deny refuses the device login with userCode.
func (s *Server) Deny(userCode string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if d := s.devices[s.userCodes[userCode]]; d != nil {
		d.denied = true
	}
}

// SetLoginUser sets who the authorization endpoint logs in; deny makes it
// redirect with error=access_denied instead.
func (s *Server) SetLoginUser(user string, deny bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loginUser, s.denyNext = user, deny
}

// Grant issues tokens for user directly, as a login would: the access
// token, its expiry and the refresh token.
func (s *Server) Grant(user string) (access string, expiry time.Time, refresh string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	access, refresh = s.issueLocked(user)
	s.refresh[refresh] = user
	return access, s.access[access].expires, refresh
}

// RevokeAll makes every refresh token invalid.
func (s *Server) RevokeAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.refresh)
}

// ExpireAll makes every access token inactive.
func (s *Server) ExpireAll() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.access)
}

// SetTokenLife changes the expires_in of the access tokens issued from now
// on, and the number of introspections each accepts (0: no limit).
func (s *Server) SetTokenLife(expiresIn time.Duration, uses int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cfg.ExpiresIn, s.cfg.Uses = expiresIn, uses
}

// Introspections returns how many introspections found a token active and
// how many found it not.
func (s *Server) Introspections() (active, inactive int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active, s.inactive
}

// SetFailing makes the token endpoint answer 503 with an HTML page.
func (s *Server) SetFailing(fail bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = fail
}

// Refreshes counts the successful refresh_token grants.
func (s *Server) Refreshes() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refreshes
}

// ValidRefreshTokens returns the refresh tokens the server still accepts.
func (s *Server) ValidRefreshTokens() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for k := range s.refresh {
		out = append(out, k)
	}
	return out
}

func random(prefix string) string {
	b := make([]byte, 12)
	rand.Read(b)
	return prefix + base64.RawURLEncoding.EncodeToString(b)
}

// issueLocked creates an access token for user and returns it with a new
// refresh token, which the caller records.
func (s *Server) issueLocked(user string) (access, refresh string) {
	access = random("at-" + user + "-")
	s.access[access] = &accessToken{user: user, expires: time.Now().Add(s.cfg.ExpiresIn)}
	return access, random("rt-")
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, desc string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (s *Server) clientOK(r *http.Request) bool {
	if r.PostForm.Get("client_id") != s.cfg.ClientID {
		return false
	}
	return s.cfg.ClientSecret == "" || r.PostForm.Get("client_secret") == s.cfg.ClientSecret
}

func (s *Server) handleDevice(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	if r.PostForm.Get("client_id") != s.cfg.ClientID {
		oauthError(w, http.StatusBadRequest, "unauthorized_client", "AADSTS700016: Application with identifier was not found")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	dc, uc := random("dc-"), fmt.Sprintf("CODE%d", len(s.devices)+1)
	s.devices[dc] = &device{expires: time.Now().Add(s.cfg.DeviceExpiresIn), user: s.cfg.AutoApprove, denied: s.cfg.AutoDeny}
	s.userCodes[uc] = dc
	writeJSON(w, http.StatusOK, map[string]any{
		"device_code": dc, "user_code": uc, "verification_uri": s.srv.URL + "/verify",
		"expires_in": int(s.cfg.DeviceExpiresIn.Seconds()), "interval": 1,
	})
}

// handleAuthorize plays the user at the consent page: it logs in the
// configured user at once and redirects back with a code.
func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || q.Get("client_id") != s.cfg.ClientID || q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	v := url.Values{"state": {q.Get("state")}}
	if s.denyNext {
		v.Set("error", "access_denied")
	} else {
		code := random("code-")
		s.codes[code] = &authCode{user: s.loginUser, challenge: q.Get("code_challenge"), redirect: q.Get("redirect_uri")}
		v.Set("code", code)
	}
	s.mu.Unlock()
	redirect.RawQuery = v.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fail {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusServiceUnavailable)
		fmt.Fprint(w, "<html>Service Unavailable</html>")
		return
	}
	if !s.clientOK(r) {
		oauthError(w, http.StatusUnauthorized, "invalid_client", "AADSTS7000215: Invalid client secret or unknown client")
		return
	}
	var user string
	switch r.PostForm.Get("grant_type") {
	case "urn:ietf:params:oauth:grant-type:device_code":
		d := s.devices[r.PostForm.Get("device_code")]
		switch {
		case d == nil:
			oauthError(w, http.StatusBadRequest, "invalid_grant", "unknown device code")
			return
		case time.Now().After(d.expires):
			oauthError(w, http.StatusBadRequest, "expired_token", "the device code expired")
			return
		case d.denied:
			oauthError(w, http.StatusBadRequest, "access_denied", "the user declined")
			return
		case d.user == "":
			oauthError(w, http.StatusBadRequest, "authorization_pending", "waiting for the user")
			return
		}
		user = d.user
		delete(s.devices, r.PostForm.Get("device_code"))
	case "authorization_code":
		c := s.codes[r.PostForm.Get("code")]
		delete(s.codes, r.PostForm.Get("code"))
		sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
		if c == nil || c.redirect != r.PostForm.Get("redirect_uri") ||
			base64.RawURLEncoding.EncodeToString(sum[:]) != c.challenge {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "bad code, redirect_uri or code_verifier")
			return
		}
		user = c.user
	case "refresh_token":
		rt := r.PostForm.Get("refresh_token")
		u, ok := s.refresh[rt]
		if !ok {
			oauthError(w, http.StatusBadRequest, "invalid_grant", "AADSTS70008: The refresh token has expired or been revoked")
			return
		}
		s.refreshes++
		access, newRT := s.issueLocked(u)
		resp := map[string]any{"access_token": access, "token_type": "Bearer",
			"expires_in": int(s.cfg.ExpiresIn.Seconds())}
		if s.cfg.Rotate {
			delete(s.refresh, rt)
			s.refresh[newRT] = u
			resp["refresh_token"] = newRT
		}
		writeJSON(w, http.StatusOK, resp)
		return
	default:
		oauthError(w, http.StatusBadRequest, "unsupported_grant_type", "")
		return
	}
	access, rt := s.issueLocked(user)
	s.refresh[rt] = user
	writeJSON(w, http.StatusOK, map[string]any{"access_token": access, "token_type": "Bearer",
		"expires_in": int(s.cfg.ExpiresIn.Seconds()), "refresh_token": rt})
}

// handleIntrospect answers Dovecot's oauth2 passdb (introspection_mode =
// post): {"active":true,"username":USER} for a live token.
func (s *Server) handleIntrospect(w http.ResponseWriter, r *http.Request) {
	r.ParseForm()
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.access[r.PostForm.Get("token")]
	if a == nil || time.Now().After(a.expires) || (s.cfg.Uses > 0 && a.uses >= s.cfg.Uses) {
		s.inactive++
		writeJSON(w, http.StatusOK, map[string]any{"active": false})
		return
	}
	s.active++
	a.uses++
	writeJSON(w, http.StatusOK, map[string]any{"active": true, "username": a.user})
}

// Active reports whether token is live now, without counting a use.
func (s *Server) Active(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	a := s.access[token]
	return a != nil && time.Now().Before(a.expires) && (s.cfg.Uses == 0 || a.uses < s.cfg.Uses)
}
