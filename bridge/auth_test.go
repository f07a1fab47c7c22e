package bridge

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"

	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/internal/testcert"
	"github.com/pop2imap/pop2imap/internal/testnet"
	"github.com/pop2imap/pop2imap/pop3"
	"github.com/pop2imap/pop2imap/state"
)

// tokenAuthority decides which OAuth2 access tokens the fake servers take,
// and hands out tokens as a token command would.
type tokenAuthority struct {
	mu    sync.Mutex
	valid map[string]bool
	// issue is what the token command prints, call after call; the last
	// one repeats.
	issue []string
	calls int
	// Without issue, the authority hands out current, and after expire the
	// expired token once more, as a token command with a cache would.
	current, stale string
}

// newCachingAuthority hands out first until it expires.
func newCachingAuthority(first string) *tokenAuthority {
	return &tokenAuthority{valid: map[string]bool{first: true}, current: first}
}

func newTokenAuthority(valid []string, issue ...string) *tokenAuthority {
	a := &tokenAuthority{valid: map[string]bool{}, issue: issue}
	for _, v := range valid {
		a.valid[v] = true
	}
	return a
}

func (a *tokenAuthority) ok(token string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.valid[token]
}

// expire makes old invalid and fresh valid, as an hour passing would.
func (a *tokenAuthority) expire(old, fresh string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.valid, old)
	a.valid[fresh] = true
	a.current, a.stale = fresh, old
}

func (a *tokenAuthority) secret(context.Context) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.calls++
	if a.issue == nil {
		tok := a.current
		if a.stale != "" {
			tok, a.stale = a.stale, ""
		}
		return tok, nil
	}
	return a.issue[min(a.calls-1, len(a.issue)-1)], nil
}

func (a *tokenAuthority) callCount() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.calls
}

// oauthPOP3 is a scripted POP3 front end that speaks CAPA and AUTH
// XOAUTH2/OAUTHBEARER the way Microsoft 365 does: XOAUTH2 only in two steps
// (AUTH alone, the token after "+"), and a refused token answered with a
// JSON error challenge before -ERR. Once a token is accepted it logs in to
// a pop3test server with USER/PASS and relays the rest of the session, so a
// whole migration can run behind it.
type oauthPOP3 struct {
	address string
	user    string
	tokens  *tokenAuthority
	backend *pop3test.Server
	sasl    string // the SASL capability line

	mu   sync.Mutex
	auth []string // AUTH command lines received, payloads redacted
}

func newOAuthPOP3(t *testing.T, user string, tokens *tokenAuthority, backend *pop3test.Server) *oauthPOP3 {
	t.Helper()
	s := &oauthPOP3{user: user, tokens: tokens, backend: backend, sasl: "SASL XOAUTH2 OAUTHBEARER"}
	s.address = testnet.Serve(t, s.serve)
	return s
}

func (s *oauthPOP3) addr() string { return s.address }

func (s *oauthPOP3) authLines() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.auth...)
}

func (s *oauthPOP3) serve(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(conn)
	say := func(line string) { io.WriteString(conn, line+"\r\n") }
	read := func() (string, bool) {
		l, err := r.ReadString('\n')
		return strings.TrimRight(l, "\r\n"), err == nil
	}
	say("+OK fake POP3 ready")
	for {
		line, ok := read()
		if !ok {
			return
		}
		verb, arg, _ := strings.Cut(line, " ")
		switch strings.ToUpper(verb) {
		case "CAPA":
			say("+OK\r\nUSER\r\n" + s.sasl + "\r\nUIDL\r\nTOP\r\nPIPELINING\r\nRESP-CODES\r\nAUTH-RESP-CODE\r\n.")
		case "QUIT":
			say("+OK bye")
			return
		case "AUTH":
			mech, ir, hasIR := strings.Cut(arg, " ")
			s.mu.Lock()
			if hasIR {
				s.auth = append(s.auth, "AUTH "+mech+" <ir>")
			} else {
				s.auth = append(s.auth, "AUTH "+mech)
			}
			s.mu.Unlock()
			mech = strings.ToUpper(mech)
			if mech == "XOAUTH2" && hasIR {
				say("-ERR [AUTH] send AUTH XOAUTH2 alone, then the token")
				continue
			}
			if !hasIR {
				say("+ ")
				if ir, ok = read(); !ok {
					return
				}
			}
			payload, err := base64.StdEncoding.DecodeString(ir)
			if err != nil {
				say("-ERR bad base64")
				continue
			}
			user, token := parseOAuthPayload(mech, payload)
			if user != s.user || !s.tokens.ok(token) {
				js, _ := json.Marshal(map[string]string{"status": "401", "schemes": "bearer", "scope": "https://outlook.office.com/POP.AccessAsUser.All"})
				say("+ " + base64.StdEncoding.EncodeToString(js))
				if _, ok := read(); !ok {
					return
				}
				say("-ERR [AUTH] Authentication failure: unknown user name or bad password.")
				continue
			}
			s.relay(conn, r)
			return
		default:
			say("-ERR [AUTH] log in first")
		}
	}
}

// relay logs in to the backend and joins the two connections.
func (s *oauthPOP3) relay(client net.Conn, r *bufio.Reader) {
	back, err := net.Dial("tcp", s.backend.Addr())
	if err != nil {
		io.WriteString(client, "-ERR [SYS/TEMP] backend down\r\n")
		return
	}
	defer back.Close()
	br := bufio.NewReader(back)
	fmt.Fprintf(back, "USER %s\r\nPASS %s\r\n", popUser, popPass)
	for i := 0; i < 3; i++ { // greeting, USER, PASS
		if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "+OK") {
			io.WriteString(client, "-ERR [SYS/TEMP] backend refused: "+strings.TrimSpace(l)+"\r\n")
			return
		}
	}
	io.WriteString(client, "+OK logged in\r\n")
	client.SetDeadline(time.Time{})
	done := make(chan struct{}, 2)
	go func() { io.Copy(back, r); back.Close(); done <- struct{}{} }()
	go func() { io.Copy(client, br); client.Close(); done <- struct{}{} }()
	<-done
	<-done
}

// parseOAuthPayload reads the user and token of an XOAUTH2 or OAUTHBEARER
// initial response.
func parseOAuthPayload(mech string, p []byte) (user, token string) {
	fields := strings.Split(string(p), "\x01")
	if mech == "OAUTHBEARER" {
		gs2, _, _ := strings.Cut(fields[0], "\x01")
		for _, part := range strings.Split(gs2, ",") {
			if strings.HasPrefix(part, "a=") {
				user = strings.NewReplacer("=2C", ",", "=3D", "=").Replace(part[2:])
			}
		}
	}
	for _, f := range fields {
		switch {
		case strings.HasPrefix(f, "user="):
			user = f[5:]
		case strings.HasPrefix(f, "auth=Bearer "):
			token = f[len("auth=Bearer "):]
		}
	}
	return user, token
}

// saslIMAP is an in-process IMAP server (imapmemserver) that logs in with
// LOGIN, AUTHENTICATE PLAIN, XOAUTH2 and OAUTHBEARER.
type saslIMAP struct {
	srv    *imapserver.Server
	ln     net.Listener
	user   *imapmemserver.User
	tokens *tokenAuthority
	// dropAppend, when set, is asked before each APPEND (1-based count);
	// true drops the connection without storing.
	dropAppend func(n int) bool
	// refuseLogin, when set, is asked before each LOGIN (1-based count);
	// an error refuses it.
	refuseLogin func(n int) error

	mu      sync.Mutex
	appends int
	logins  int
	mechs   []string // mechanisms used by successful logins, "LOGIN" for the command
}

type saslIMAPOptions struct {
	tokens       *tokenAuthority
	tlsConfig    *tls.Config // offers STARTTLS when set
	insecureAuth bool        // allow login without TLS (else LOGINDISABLED)
	mechs        []string    // AUTH= capabilities; nil means PLAIN XOAUTH2 OAUTHBEARER
}

func newSASLIMAP(t *testing.T, o saslIMAPOptions) *saslIMAP {
	t.Helper()
	mem := imapmemserver.New()
	s := &saslIMAP{user: imapmemserver.NewUser(imapUser, imapPass), tokens: o.tokens}
	if err := s.user.Create("INBOX", nil); err != nil {
		t.Fatal(err)
	}
	mem.AddUser(s.user)
	mechs := o.mechs
	if mechs == nil {
		mechs = []string{"PLAIN", "XOAUTH2", "OAUTHBEARER"}
	}
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: func(conn *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &saslSession{Session: mem.NewSession(), srv: s, conn: conn, mechs: mechs}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}, imap.CapUIDPlus: {}},
		TLSConfig:    o.tlsConfig,
		InsecureAuth: o.insecureAuth,
		Logger:       log.New(io.Discard, "", 0),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.ln = ln
	go s.srv.Serve(ln)
	t.Cleanup(func() { s.srv.Close() })
	return s
}

func (s *saslIMAP) addr() string { return s.ln.Addr().String() }

func (s *saslIMAP) usedMechs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.mechs...)
}

func (s *saslIMAP) loggedIn(mech string) {
	s.mu.Lock()
	s.mechs = append(s.mechs, mech)
	s.mu.Unlock()
}

type saslSession struct {
	imapserver.Session
	srv   *saslIMAP
	conn  *imapserver.Conn
	mechs []string
}

func (sess *saslSession) Login(username, password string) error {
	s := sess.srv
	s.mu.Lock()
	s.logins++
	n := s.logins
	s.mu.Unlock()
	if s.refuseLogin != nil {
		if err := s.refuseLogin(n); err != nil {
			return err
		}
	}
	if err := sess.Session.Login(username, password); err != nil {
		return err
	}
	sess.srv.loggedIn("LOGIN")
	return nil
}

func (sess *saslSession) AuthenticateMechanisms() []string { return sess.mechs }

var errAuthFailed = &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "Invalid credentials (Failure)"}

func (sess *saslSession) Authenticate(mech string) (sasl.Server, error) {
	login := func(user string) error {
		if err := sess.Session.Login(user, imapPass); err != nil {
			return err
		}
		sess.srv.loggedIn(mech)
		return nil
	}
	checkToken := func(user, token string) bool {
		return sess.srv.tokens != nil && user == imapUser && sess.srv.tokens.ok(token)
	}
	switch mech {
	case "PLAIN":
		return sasl.NewPlainServer(func(identity, username, password string) error {
			if err := sess.Session.Login(username, password); err != nil {
				return err
			}
			sess.srv.loggedIn(mech)
			return nil
		}), nil
	case "XOAUTH2":
		return &xoauth2Server{check: func(user, token string) error {
			if !checkToken(user, token) {
				return errAuthFailed
			}
			return login(user)
		}}, nil
	case "OAUTHBEARER":
		return imapSASLError{sasl.NewOAuthBearerServer(func(o sasl.OAuthBearerOptions) *sasl.OAuthBearerError {
			if !checkToken(o.Username, o.Token) || login(o.Username) != nil {
				return &sasl.OAuthBearerError{Status: "invalid_token", Schemes: "bearer"}
			}
			return nil
		})}, nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Text: "unsupported mechanism"}
}

func (sess *saslSession) Append(mailbox string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	s := sess.srv
	s.mu.Lock()
	s.appends++
	n := s.appends
	s.mu.Unlock()
	if s.dropAppend != nil && s.dropAppend(n) {
		sess.conn.NetConn().Close()
		return nil, errors.New("saslIMAP: connection dropped")
	}
	return sess.Session.Append(mailbox, r, options)
}

// imapSASLError turns go-sasl's refusals into NO [AUTHENTICATIONFAILED],
// as a real server answers; imapserver would call them server bugs.
type imapSASLError struct{ sasl.Server }

func (s imapSASLError) Next(resp []byte) ([]byte, bool, error) {
	challenge, done, err := s.Server.Next(resp)
	var ierr *imap.Error
	if err != nil && !errors.As(err, &ierr) {
		err = errAuthFailed
	}
	return challenge, done, err
}

// xoauth2Server is the server side of XOAUTH2 as Gmail runs it: a refused
// token gets a JSON error challenge, and the client's empty answer to it
// gets the final NO.
type xoauth2Server struct {
	check  func(user, token string) error
	failed error
}

func (s *xoauth2Server) Next(resp []byte) ([]byte, bool, error) {
	if s.failed != nil {
		return nil, true, s.failed
	}
	if resp == nil {
		return nil, false, nil // ask for the initial response
	}
	user, token := parseOAuthPayload("XOAUTH2", resp)
	if err := s.check(user, token); err != nil {
		s.failed = err
		js, _ := json.Marshal(map[string]string{"status": "401", "schemes": "Bearer", "scope": "https://mail.google.com/"})
		return js, false, nil
	}
	return nil, true, nil
}

// TestAuthMechanismsInProcess logs in with every mechanism on both sides
// against the in-process servers, forced and chosen automatically, and
// checks the server saw the mechanism that was asked for.
func TestAuthMechanismsInProcess(t *testing.T) {
	tokens := newTokenAuthority([]string{"good-token"}, "good-token")
	backend, err := pop3test.NewServer(pop3test.Config{Username: popUser, Password: popPass, APOPSecret: popPass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	front := newOAuthPOP3(t, popUser, tokens, backend)
	im := newSASLIMAP(t, saslIMAPOptions{tokens: tokens, insecureAuth: true})

	pop3Tests := []struct {
		mech    AuthMech
		oauth   bool
		wantLog string // the command pop3test or the front end logged
	}{
		{AuthAuto, false, "AUTH PLAIN"},
		{AuthUser, false, "PASS"},
		{AuthAPOP, false, "APOP"},
		{AuthPlain, false, "AUTH PLAIN"},
		{AuthAuto, true, "AUTH XOAUTH2"},
		{AuthXOAUTH2, false, "AUTH XOAUTH2"},
		{AuthOAuthBearer, false, "AUTH OAUTHBEARER <ir>"},
	}
	for _, tt := range pop3Tests {
		t.Run(fmt.Sprintf("pop3/%s/oauth=%v", tt.mech.label("pop3"), tt.oauth), func(t *testing.T) {
			ep := &Endpoint{Addr: backend.Addr(), Username: popUser, TLS: TLSNone, Auth: tt.mech, OAuth2: tt.oauth,
				Secret: staticSecret(popPass), Timeout: 5 * time.Second}
			var log func() []string = backend.Log
			if tt.oauth || tt.mech.OAuth2() {
				ep.Addr, ep.Secret, log = front.addr(), tokens.secret, front.authLines
			}
			before := len(log())
			c, err := DialPOP3(context.Background(), ep)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Quit() // releases the maildrop before the next login
			if _, _, err := c.Stat(); err != nil {
				t.Fatalf("STAT after login: %v", err)
			}
			found := false
			for _, l := range log()[before:] {
				found = found || strings.HasPrefix(l, tt.wantLog)
			}
			if !found {
				t.Errorf("server log %q has no %q", log()[before:], tt.wantLog)
			}
		})
	}

	imapTests := []struct {
		mech  AuthMech
		oauth bool
		want  string
	}{
		{AuthAuto, false, "PLAIN"},
		{AuthLogin, false, "LOGIN"},
		{AuthPlain, false, "PLAIN"},
		{AuthAuto, true, "XOAUTH2"},
		{AuthXOAUTH2, false, "XOAUTH2"},
		{AuthOAuthBearer, false, "OAUTHBEARER"},
	}
	for _, tt := range imapTests {
		t.Run(fmt.Sprintf("imap/%s/oauth=%v", tt.mech.label("imap"), tt.oauth), func(t *testing.T) {
			ep := &Endpoint{Addr: im.addr(), Username: imapUser, TLS: TLSNone, Auth: tt.mech, OAuth2: tt.oauth,
				Secret: staticSecret(imapPass), Timeout: 5 * time.Second}
			if tt.oauth || tt.mech.OAuth2() {
				ep.Secret = tokens.secret
			}
			before := len(im.usedMechs())
			c, err := DialIMAP(context.Background(), ep)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if got := im.usedMechs()[before:]; len(got) != 1 || got[0] != tt.want {
				t.Errorf("server saw logins %q, want one %s", got, tt.want)
			}
		})
	}
}

// TestPOP3XOAUTH2IsTwoStep: AUTH XOAUTH2 goes alone and the token follows
// the "+", which Microsoft 365 requires; the front end refuses the one-step
// form, so a login proves it.
func TestPOP3XOAUTH2IsTwoStep(t *testing.T) {
	tokens := newTokenAuthority([]string{"tok"}, "tok")
	backend, err := pop3test.NewServer(pop3test.Config{Username: popUser, Password: popPass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	front := newOAuthPOP3(t, popUser, tokens, backend)
	c, err := DialPOP3(context.Background(), &Endpoint{Addr: front.addr(), Username: popUser, TLS: TLSNone,
		OAuth2: true, Secret: tokens.secret, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got := front.authLines(); len(got) != 1 || got[0] != "AUTH XOAUTH2" {
		t.Errorf("AUTH lines %q, want one bare \"AUTH XOAUTH2\"", got)
	}
}

// TestOAuthRefusalExplained: a refused token is an AuthError that names
// the mechanism and the server's reason, and says a fresh token was tried
// too when the token command gave a different one.
func TestOAuthRefusalExplained(t *testing.T) {
	backend, err := pop3test.NewServer(pop3test.Config{Username: popUser, Password: popPass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	for _, tt := range []struct {
		proto string
		mech  AuthMech
		want  []string
	}{
		{"pop3", AuthXOAUTH2, []string{"AUTH XOAUTH2", "status 401", "expired", "fresh token"}},
		{"pop3", AuthOAuthBearer, []string{"AUTH OAUTHBEARER", "status 401", "fresh token"}},
		{"imap", AuthXOAUTH2, []string{"AUTHENTICATE XOAUTH2", "AUTHENTICATIONFAILED", "status 401", "fresh token"}},
		{"imap", AuthOAuthBearer, []string{"AUTHENTICATE OAUTHBEARER", "invalid_token", "fresh token"}},
	} {
		t.Run(tt.proto+"/"+string(tt.mech), func(t *testing.T) {
			tokens := newTokenAuthority([]string{"valid"}, "stale-1", "stale-2")
			front := newOAuthPOP3(t, popUser, tokens, backend)
			im := newSASLIMAP(t, saslIMAPOptions{tokens: tokens, insecureAuth: true})
			ep := &Endpoint{Username: popUser, TLS: TLSNone, Auth: tt.mech, Secret: tokens.secret, Timeout: 5 * time.Second}
			var err error
			if tt.proto == "pop3" {
				ep.Addr = front.addr()
				_, err = DialPOP3(context.Background(), ep)
			} else {
				ep.Addr, ep.Username = im.addr(), imapUser
				_, err = DialIMAP(context.Background(), ep)
			}
			var aerr *AuthError
			if !errors.As(err, &aerr) {
				t.Fatalf("error %v is not an AuthError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if strings.Contains(err.Error(), "stale") {
				t.Errorf("error %q shows the token", err)
			}
			if n := tokens.callCount(); n != 2 {
				t.Errorf("token command ran %d times, want 2 (once more after the refusal)", n)
			}
		})
	}
}

// TestOAuthRefreshOnce: an expired token is followed by one more try with
// a fresh token; a token command that keeps printing the same token is not
// retried, and a password refusal is never retried.
func TestOAuthRefreshOnce(t *testing.T) {
	backend, err := pop3test.NewServer(pop3test.Config{Username: popUser, Password: popPass})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	tests := []struct {
		name      string
		issue     []string
		oauth     bool
		wantOK    bool
		wantCalls int
	}{
		{"expired then good", []string{"expired", "good"}, true, true, 2},
		{"same token twice", []string{"expired"}, true, false, 2},
		{"password", []string{"wrong-password"}, false, false, 1},
	}
	for _, tt := range tests {
		for _, proto := range []string{"pop3", "imap"} {
			t.Run(proto+"/"+tt.name, func(t *testing.T) {
				tokens := newTokenAuthority([]string{"good"}, tt.issue...)
				front := newOAuthPOP3(t, popUser, tokens, backend)
				im := newSASLIMAP(t, saslIMAPOptions{tokens: tokens, insecureAuth: true})
				ep := &Endpoint{TLS: TLSNone, OAuth2: tt.oauth, Secret: tokens.secret, Timeout: 5 * time.Second}
				var err error
				if proto == "pop3" {
					ep.Addr, ep.Username = front.addr(), popUser
					if !tt.oauth {
						ep.Addr = backend.Addr()
					}
					var c *pop3.Client
					c, err = DialPOP3(context.Background(), ep)
					if err == nil {
						c.Quit()
					}
				} else {
					ep.Addr, ep.Username = im.addr(), imapUser
					var c interface{ Close() error }
					c, err = DialIMAP(context.Background(), ep)
					if err == nil {
						c.Close()
					}
				}
				if (err == nil) != tt.wantOK {
					t.Fatalf("login error %v, want ok=%v", err, tt.wantOK)
				}
				if n := tokens.callCount(); n != tt.wantCalls {
					t.Errorf("secret asked %d times, want %d", n, tt.wantCalls)
				}
			})
		}
	}
}

// TestMigrationOutlivesToken runs a migration with OAuth2 on both sides
// during which every token expires: the IMAP connection drops mid-run and
// the POP3 session is cut, in whichever order the pipeline reaches them,
// the token command still hands out the old token once (as a command with
// a cache would), and the run goes on with fresh tokens to copy everything
// exactly once.
func TestMigrationOutlivesToken(t *testing.T) {
	msgs := sampleMessages(t)
	e := newTestEnv(t, msgs, pop3test.Config{})
	popTokens := newCachingAuthority("pop-1")
	imapTokens := newCachingAuthority("imap-1")
	front := newOAuthPOP3(t, popUser, popTokens, e.pop)
	im := newSASLIMAP(t, saslIMAPOptions{tokens: imapTokens, insecureAuth: true})
	var dropped atomic.Bool
	im.dropAppend = func(n int) bool {
		if n == 3 {
			imapTokens.expire("imap-1", "imap-2")
			dropped.Store(true)
			return true
		}
		return false
	}
	// The POP3 session is cut in the middle of the fifth message, when the
	// first token has expired.
	e.pop.SetFault(pop3test.Fault{Command: "RETR", Nth: 5, CutAfter: 10, Hook: func() { popTokens.expire("pop-1", "pop-2") }})

	j, err := state.Open(e.journal)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	m := &Migrator{
		Config:  Config{Folder: "INBOX", RetryDelay: time.Millisecond, IMAPConns: 1, Window: 1},
		POP3:    &Endpoint{Addr: front.addr(), Username: popUser, TLS: TLSNone, OAuth2: true, Secret: popTokens.secret, Timeout: 5 * time.Second},
		IMAP:    &Endpoint{Addr: im.addr(), Username: imapUser, TLS: TLSNone, OAuth2: true, Secret: imapTokens.secret, Timeout: 5 * time.Second},
		Journal: j, Stats: &Stats{},
	}
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("run: %v", err)
	}
	if !dropped.Load() {
		t.Fatal("the IMAP connection was never dropped: the test proves nothing")
	}
	if n := popTokens.callCount(); n < 3 {
		t.Errorf("POP3 token command ran %d times, want at least 3 (login, stale re-login, fresh)", n)
	}
	if n := len(front.authLines()); n < 3 {
		t.Errorf("POP3 server saw %d AUTH commands, want at least 3 (login, stale token refused, fresh)", n)
	}
	if n := imapTokens.callCount(); n < 3 {
		t.Errorf("IMAP token command ran %d times, want at least 3", n)
	}
	got := fetchAllIMAP(t, im.addr(), "INBOX")
	if len(got) != len(msgs) {
		t.Errorf("folder holds %d messages, want %d", len(got), len(msgs))
	}
	if m.Stats.Appended.Load()+m.Stats.Recovered.Load() != int64(len(msgs)) {
		t.Errorf("appended %d + recovered %d, want %d", m.Stats.Appended.Load(), m.Stats.Recovered.Load(), len(msgs))
	}
}

// TestInsecureAuthRefusedForEveryMechanism pretends 127.0.0.1 is a remote
// host: without TLS every mechanism that sends the secret is refused
// before a byte of it is sent, APOP is allowed, and over STARTTLS a forced
// plaintext mechanism is fine.
func TestInsecureAuthRefusedForEveryMechanism(t *testing.T) {
	isLoopbackHost = func(string) bool { return false }
	t.Cleanup(func() { isLoopbackHost = isLoopback })
	serverTLS, clientTLS := testcert.Configs(t)
	backend, err := pop3test.NewServer(pop3test.Config{Username: popUser, Password: popPass, APOPSecret: popPass, TLSConfig: serverTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { backend.Close() })
	im := newSASLIMAP(t, saslIMAPOptions{tlsConfig: serverTLS, tokens: newTokenAuthority([]string{"tok"}, "tok")})

	for _, m := range []AuthMech{AuthAuto, AuthUser, AuthPlain, AuthLogin, AuthXOAUTH2, AuthOAuthBearer, AuthAPOP} {
		t.Run("pop3/"+string(m), func(t *testing.T) {
			ep := &Endpoint{Addr: backend.Addr(), Username: popUser, TLS: TLSNone, Auth: m, Secret: staticSecret(popPass), Timeout: 5 * time.Second}
			before := len(backend.Log())
			c, err := DialPOP3(context.Background(), ep)
			if m == AuthAPOP {
				if err != nil {
					t.Fatalf("APOP without TLS: %v, want a login (only a digest is sent)", err)
				}
				c.Quit()
				return
			}
			if !errors.Is(err, ErrInsecureAuth) {
				t.Fatalf("error %v, want ErrInsecureAuth", err)
			}
			for _, l := range backend.Log()[before:] {
				if strings.HasPrefix(l, "USER") || strings.HasPrefix(l, "PASS") || strings.HasPrefix(l, "AUTH") {
					t.Errorf("sent %q before refusing", l)
				}
			}
			if m == AuthUser || m == AuthPlain { // what pop3test speaks
				ep.TLS, ep.TLSConfig = TLSStartTLS, clientTLS
				c, err := DialPOP3(context.Background(), ep)
				if err != nil {
					t.Fatalf("forced %s over STARTTLS: %v", m, err)
				}
				c.Quit()
			}
		})
	}
	for _, m := range []AuthMech{AuthAuto, AuthLogin, AuthPlain, AuthXOAUTH2, AuthOAuthBearer} {
		t.Run("imap/"+string(m), func(t *testing.T) {
			secret := staticSecret(imapPass)
			if m.OAuth2() {
				secret = staticSecret("tok")
			}
			ep := &Endpoint{Addr: im.addr(), Username: imapUser, TLS: TLSNone, Auth: m, Secret: secret, Timeout: 5 * time.Second}
			if _, err := DialIMAP(context.Background(), ep); !errors.Is(err, ErrInsecureAuth) {
				t.Fatalf("error %v, want ErrInsecureAuth", err)
			}
			ep.TLS, ep.TLSConfig = TLSStartTLS, clientTLS
			c, err := DialIMAP(context.Background(), ep)
			if err != nil {
				t.Fatalf("%s over STARTTLS: %v", m, err)
			}
			c.Close()
		})
	}
}

// TestLoginDisabled: an IMAP server that says LOGINDISABLED and offers no
// AUTH=PLAIN stops the run with a message that says to use TLS, and the
// error is not worth retrying.
func TestLoginDisabled(t *testing.T) {
	im := newSASLIMAP(t, saslIMAPOptions{}) // no TLS, no insecure auth: LOGINDISABLED
	for _, m := range []AuthMech{AuthAuto, AuthLogin} {
		ep := &Endpoint{Addr: im.addr(), Username: imapUser, TLS: TLSNone, Auth: m, Secret: staticSecret(imapPass), Timeout: 5 * time.Second}
		_, err := DialIMAP(context.Background(), ep)
		if !errors.Is(err, ErrLoginDisabled) || !strings.Contains(err.Error(), "--imap-tls") {
			t.Errorf("%s: error %v, want ErrLoginDisabled suggesting --imap-tls", m, err)
		}
		if isTemporary(err) {
			t.Errorf("%s: LOGINDISABLED is taken as temporary", m)
		}
	}
}

// TestLoginRefusalKinds: [AUTH] stops, [IN-USE] and [SYS/TEMP] are retried
// later, and each message says which.
func TestLoginRefusalKinds(t *testing.T) {
	for _, tt := range []struct {
		code      string
		temporary bool
	}{
		{"AUTH", false},
		{"IN-USE", true},
		{"SYS/TEMP", true},
		{"", false},
	} {
		t.Run(tt.code, func(t *testing.T) {
			srv, err := pop3test.NewServer(pop3test.Config{Username: popUser, Password: popPass})
			if err != nil {
				t.Fatal(err)
			}
			defer srv.Close()
			srv.SetFault(pop3test.Fault{Command: "AUTH", ErrCode: tt.code, ErrText: "no"})
			_, err = DialPOP3(context.Background(), &Endpoint{Addr: srv.Addr(), Username: popUser, TLS: TLSNone,
				Secret: staticSecret(popPass), Timeout: 5 * time.Second})
			if err == nil {
				t.Fatal("login succeeded")
			}
			if got := isTemporary(err); got != tt.temporary {
				t.Errorf("isTemporary(%v) = %v, want %v", err, got, tt.temporary)
			}
			var aerr *AuthError
			if errors.As(err, &aerr) == tt.temporary {
				t.Errorf("%v: AuthError=%v, want %v", err, !tt.temporary, !tt.temporary)
			}
			if tt.temporary && !strings.Contains(err.Error(), "temporary") {
				t.Errorf("%q does not say the refusal is temporary", err)
			}
		})
	}
}

// TestIMAPTemporaryLoginRefusal: NO [UNAVAILABLE] at login is a temporary
// ConnectError, not an AuthError.
func TestIMAPTemporaryLoginRefusal(t *testing.T) {
	err := classifyForTest(&imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable, Text: "try later"})
	var cerr *ConnectError
	if !errors.As(err, &cerr) || !cerr.Temporary() {
		t.Errorf("NO [UNAVAILABLE]: %v, want a temporary ConnectError", err)
	}
	err = classifyForTest(&imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: "bad"})
	var aerr *AuthError
	if !errors.As(err, &aerr) {
		t.Errorf("NO [AUTHENTICATIONFAILED]: %v, want an AuthError", err)
	}
}

// classifyForTest runs a login against a server that answers LOGIN with
// the given refusal.
func classifyForTest(refusal *imap.Error) error {
	srv := imapserver.New(&imapserver.Options{
		NewSession: func(*imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
			return &refusingSession{Session: imapmemserver.New().NewSession(), err: refusal}, nil, nil
		},
		Caps:         imap.CapSet{imap.CapIMAP4rev1: {}},
		InsecureAuth: true,
		Logger:       log.New(io.Discard, "", 0),
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go srv.Serve(ln)
	defer srv.Close()
	_, err = DialIMAP(context.Background(), &Endpoint{Addr: ln.Addr().String(), Username: "u", TLS: TLSNone,
		Auth: AuthLogin, Secret: staticSecret("password-1"), Timeout: 5 * time.Second})
	return err
}

type refusingSession struct {
	imapserver.Session
	err error
}

func (s *refusingSession) Login(string, string) error { return s.err }

// fetchAllIMAP returns every message of folder in UID order.
func fetchAllIMAP(t *testing.T, addr, folder string) [][]byte {
	t.Helper()
	c, err := DialIMAP(context.Background(), &Endpoint{Addr: addr, Username: imapUser, TLS: TLSNone, Auth: AuthLogin,
		Secret: staticSecret(imapPass), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Select(folder, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.Fetch(imap.SeqSet{imap.SeqRange{Start: 1, Stop: 0}}, &imap.FetchOptions{
		BodySection: []*imap.FetchItemBodySection{{Peek: true}},
	}).Collect()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, m := range msgs {
		for _, b := range m.BodySection {
			out = append(out, bytes.Clone(b.Bytes))
		}
	}
	return out
}

// TestUnofferedMechanismExplained: a forced mechanism the server does not
// list, and that it then refuses, is reported as such, with what it offers.
func TestUnofferedMechanismExplained(t *testing.T) {
	srv, err := pop3test.NewServer(pop3test.Config{Username: popUser, Password: popPass})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	_, err = DialPOP3(context.Background(), &Endpoint{Addr: srv.Addr(), Username: popUser, TLS: TLSNone,
		Auth: AuthXOAUTH2, Secret: staticSecret("token"), Timeout: 5 * time.Second})
	var aerr *AuthError
	if !errors.As(err, &aerr) || !strings.Contains(err.Error(), "does not offer XOAUTH2 (it offers SASL PLAIN)") {
		t.Errorf("error %v: want an AuthError saying XOAUTH2 is not offered", err)
	}
}

// TestRedialRefusalIsNotAMessageRefusal: when an appender's connection
// drops and the new login is refused with an IMAP NO that is not about the
// credentials (here [PRIVACYREQUIRED]), the run must stop or retry; the
// message must not be recorded as refused by the server and left behind.
func TestRedialRefusalIsNotAMessageRefusal(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t)[:3], pop3test.Config{})
	im := newSASLIMAP(t, saslIMAPOptions{insecureAuth: true})
	im.dropAppend = func(n int) bool { return n == 1 }
	im.refuseLogin = func(n int) error {
		if n == 2 {
			return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodePrivacyRequired, Text: "use TLS"}
		}
		return nil
	}
	j, err := state.Open(e.journal)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	pop, _ := e.endpoints()
	m := &Migrator{Config: Config{Folder: "INBOX", IMAPConns: 1, Retries: 3, RetryDelay: time.Millisecond}, POP3: pop,
		IMAP:    &Endpoint{Addr: im.addr(), Username: imapUser, TLS: TLSNone, Auth: AuthLogin, Secret: staticSecret(imapPass), Timeout: 5 * time.Second},
		Journal: j, Stats: &Stats{}}
	m.Run(context.Background())
	if n := m.Stats.LeftBehind.Load(); n != 0 {
		t.Errorf("%d messages recorded as refused by the server after a failed re-login", n)
	}
}
