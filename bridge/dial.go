package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-sasl"

	"github.com/pop2imap/pop2imap/internal/errkind"
	"github.com/pop2imap/pop2imap/internal/imapappend"
	"github.com/pop2imap/pop2imap/pop3"
)

// TLSMode says how a connection is protected.
type TLSMode int

const (
	// TLSImplicit starts TLS at once (POP3S on 995, IMAPS on 993).
	TLSImplicit TLSMode = iota
	// TLSStartTLS connects in plain text and upgrades with STLS or STARTTLS
	// before any credential is sent.
	TLSStartTLS
	// TLSNone never encrypts.
	TLSNone
)

// ParseTLSMode parses the values accepted by --pop3-tls and --imap-tls.
func ParseTLSMode(s string) (TLSMode, error) {
	switch strings.ToLower(s) {
	case "implicit", "tls", "ssl":
		return TLSImplicit, nil
	case "starttls", "stls":
		return TLSStartTLS, nil
	case "none", "plain":
		return TLSNone, nil
	}
	return 0, fmt.Errorf("unknown TLS mode %q (want implicit, starttls or none)", s)
}

func (m TLSMode) String() string {
	switch m {
	case TLSImplicit:
		return "implicit"
	case TLSStartTLS:
		return "starttls"
	default:
		return "none"
	}
}

// SecretFunc returns a password or token. It is called for every login, so a
// command that prints a fresh token is run again when one expires.
type SecretFunc func(ctx context.Context) (string, error)

// Endpoint says how to reach and log in to one server.
type Endpoint struct {
	Addr     string // host:port
	Username string
	TLS      TLSMode
	// TLSConfig holds the roots and server name to verify against; nil means
	// the system roots and the host from Addr.
	TLSConfig *tls.Config
	// Secret yields the password, or the access token when OAuth2 is set
	// or Auth is an OAuth2 mechanism. It is called at every login.
	Secret SecretFunc
	// Auth forces a login mechanism; AuthAuto picks the best one the
	// server offers.
	Auth AuthMech
	// OAuth2 says that Secret yields OAuth2 access tokens: the login uses
	// XOAUTH2, or OAUTHBEARER when the server offers only that, unless
	// Auth forces one of them.
	OAuth2 bool
	// AllowInsecureAuth permits a password over an unencrypted connection to
	// a host that is not a loopback address.
	AllowInsecureAuth bool
	// Timeout bounds each command on the wire; zero means one minute.
	Timeout time.Duration
	// Gate, when set, admits every connection to the server: one is
	// opened only once Gate grants it a slot, and the slot is given back
	// when the connection closes. Package fleet sets it so that many
	// accounts stay within a cap of connections per host.
	Gate ConnGate
}

// ConnGate admits connections to one server.
type ConnGate interface {
	// Acquire waits until one more connection may be opened, or ctx ends,
	// and returns the function that gives the slot back.
	Acquire(ctx context.Context) (release func(), err error)
}

func (ep *Endpoint) timeout() time.Duration {
	if ep.Timeout > 0 {
		return ep.Timeout
	}
	return DefaultTimeout
}

// Host is the server's host name or address, without the port.
func (ep *Endpoint) Host() string {
	host, _, err := net.SplitHostPort(ep.Addr)
	if err != nil {
		return ep.Addr
	}
	return host
}

func (ep *Endpoint) tlsConfig() *tls.Config {
	cfg := &tls.Config{}
	if ep.TLSConfig != nil {
		cfg = ep.TLSConfig.Clone()
	}
	if cfg.ServerName == "" {
		cfg.ServerName = ep.Host()
	}
	if cfg.MinVersion == 0 {
		cfg.MinVersion = tls.VersionTLS12
	}
	return cfg
}

// ErrInsecureAuth is returned, wrapped, when a password would travel
// unencrypted to a host that is not on this machine.
var ErrInsecureAuth error = &errkind.Error{Kind: errkind.Config,
	Err: errors.New("refusing to send a password over an unencrypted connection to a non-loopback host")}

// CheckAuthAllowed is the gate for unencrypted logins: only loopback hosts,
// unless the user said otherwise or forced APOP, which sends only a digest.
// The dial functions call it before connecting, and check the mechanism
// they pick again; callers may call it earlier to fail before any work.
func (ep *Endpoint) CheckAuthAllowed(proto string) error {
	if err := ep.checkMech(proto); err != nil {
		return &ConnectError{Proto: proto, Addr: ep.Addr, Op: "login", Err: err}
	}
	if ep.secureLink() || ep.AllowInsecureAuth || (proto == "pop3" && ep.Auth == AuthAPOP) {
		return nil
	}
	return ep.insecureAuthError(proto, ep.Auth)
}

// isLoopbackHost is isLoopback; tests replace it to make 127.0.0.1 look
// like a remote host.
var isLoopbackHost = isLoopback

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ConnectError reports a failure to reach, secure or log in to a server.
type ConnectError struct {
	Proto string // "pop3" or "imap"
	Addr  string
	Op    string // "dial", "tls", "greeting", "password", "login"
	Err   error
}

func (e *ConnectError) Error() string {
	s := fmt.Sprintf("%s %s: %s: %v", e.Proto, e.Addr, e.Op, e.Err)
	switch {
	case e.Op == "login" && e.Temporary() && isNetError(e.Err):
		s += " (the server did not answer the login in time)"
	case e.Op == "login" && e.Temporary():
		s += " (a temporary refusal: worth retrying later)"
	}
	return s
}

func (e *ConnectError) Unwrap() error { return e.Err }

// Temporary reports whether trying again later may succeed: a login the
// server refused for now ([IN-USE], [LOGIN-DELAY], [SYS/TEMP] on POP3;
// [UNAVAILABLE], [INUSE], [SERVERBUG], [LIMIT] on IMAP) or a connection lost during
// login. An unreachable host, a certificate that does not verify or a
// failing password command will not mend itself within a few retries.
func (e *ConnectError) Temporary() bool {
	if e.Op != "login" || errors.Is(e.Err, ErrInsecureAuth) || errors.Is(e.Err, ErrLoginDisabled) {
		return false
	}
	var perr *pop3.Error
	if errors.As(e.Err, &perr) {
		return perr.Temporary()
	}
	var ierr *imap.Error
	if errors.As(e.Err, &ierr) {
		return temporaryIMAPCode(ierr.Code)
	}
	return isNetError(e.Err)
}

// temporaryIMAPCode reports whether a login refused with code may work
// later. LIMIT at login means too many connections.
func temporaryIMAPCode(code imap.ResponseCode) bool {
	switch code {
	case imap.ResponseCodeUnavailable, imap.ResponseCodeInUse, imap.ResponseCodeServerBug, imap.ResponseCodeLimit:
		return true
	}
	return false
}

// AuthError is a login the server refused: the credentials are wrong, or the
// account may not log in this way. Retrying the same secret will not help.
type AuthError struct {
	Proto string
	Addr  string
	User  string
	Mech  AuthMech // the mechanism that was refused
	// Refreshed is set when the refusal came after the OAuth2 token
	// command was run again for a fresh token.
	Refreshed bool
	// Detail explains an OAuth2 refusal from the server's error challenge,
	// e.g. "the server refused the token (status 401)"; "" when none.
	Detail string
	Err    error
}

func (e *AuthError) Error() string {
	s := fmt.Sprintf("%s %s: login as %s", e.Proto, e.Addr, e.User)
	if e.Mech != AuthAuto {
		s += " with " + e.Mech.label(e.Proto)
	}
	s += fmt.Sprintf(" refused: %v", e.Err)
	if e.Detail != "" {
		s += "; " + e.Detail
	}
	if e.Refreshed {
		s += " (also with a fresh token)"
	}
	return s
}

func (e *AuthError) Unwrap() error { return e.Err }

// dialTCP opens a connection to the server, the one place every POP3 and
// IMAP connection is opened, once the endpoint's Gate admits it.
func (ep *Endpoint) dialTCP(ctx context.Context) (net.Conn, error) {
	release := func() {}
	if ep.Gate != nil {
		var err error
		if release, err = ep.Gate.Acquire(ctx); err != nil {
			return nil, err
		}
	}
	d := net.Dialer{Timeout: ep.timeout(), KeepAlive: 30 * time.Second}
	conn, err := d.DialContext(ctx, "tcp", ep.Addr)
	if err != nil {
		release()
		return nil, err
	}
	if ep.Gate == nil {
		return conn, nil
	}
	return &gatedConn{Conn: conn, release: release}, nil
}

// gatedConn gives its slot back to the gate when it is first closed.
type gatedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *gatedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// handshake runs a TLS handshake within the endpoint's timeout.
func (ep *Endpoint) handshake(ctx context.Context, conn net.Conn) (*tls.Conn, error) {
	cfg := ep.tlsConfig()
	tc := tls.Client(conn, cfg)
	tc.SetDeadline(time.Now().Add(ep.timeout()))
	if err := tc.HandshakeContext(ctx); err != nil {
		return nil, describeTLSError(err, cfg.ServerName)
	}
	tc.SetDeadline(time.Time{})
	return tc, nil
}

// loginWithRefresh gets the secret and logs in with it. When an OAuth2
// token is refused, it asks for a fresh one and, if that differs, tries
// once more on a new connection: a token command that hands out a cached
// token may hand out one that expired a moment ago. The second call's
// context tells the secret function which token was refused (see
// RefusedToken), so that a token file can refresh at once.
func loginWithRefresh[C any](ctx context.Context, ep *Endpoint, proto string, dial func(secret string) (C, error)) (C, error) {
	var zero C
	if err := ep.CheckAuthAllowed(proto); err != nil {
		return zero, err
	}
	getSecret := func(ctx context.Context) (string, error) {
		secret, err := ep.Secret(ctx)
		if err != nil {
			return "", &ConnectError{Proto: proto, Addr: ep.Addr, Op: ep.secretWord(), Err: err}
		}
		return secret, nil
	}
	secret, err := getSecret(ctx)
	if err != nil {
		return zero, err
	}
	c, err := dial(secret)
	var aerr *AuthError
	if err == nil || !errors.As(err, &aerr) || !aerr.Mech.OAuth2() {
		return c, err
	}
	fresh, ferr := getSecret(context.WithValue(ctx, refusedTokenKey{}, secret))
	if ferr != nil || fresh == secret {
		return zero, err
	}
	c, err = dial(fresh)
	if errors.As(err, &aerr) {
		aerr.Refreshed = true
	}
	return c, err
}

type refusedTokenKey struct{}

// RefusedToken returns the access token a server has just refused, when a
// SecretFunc is called again for a fresh one after an OAuth2 login failed;
// "" otherwise.
func RefusedToken(ctx context.Context) string {
	s, _ := ctx.Value(refusedTokenKey{}).(string)
	return s
}

// TokenSource hands out OAuth2 access tokens and replaces one a server
// refused; *oauthtoken.Source is one.
type TokenSource interface {
	AccessToken(ctx context.Context) (string, error)
	Refresh(ctx context.Context, refused string) (string, error)
}

// TokenSourceSecret is the SecretFunc of an Endpoint whose access tokens
// come from ts: the current token at each login, a refreshed one after a
// refusal.
func TokenSourceSecret(ts TokenSource) SecretFunc {
	return func(ctx context.Context) (string, error) {
		if refused := RefusedToken(ctx); refused != "" {
			return ts.Refresh(ctx, refused)
		}
		return ts.AccessToken(ctx)
	}
}

// DialPOP3 connects, secures and logs in to the POP3 server.
func DialPOP3(ctx context.Context, ep *Endpoint) (*pop3.Client, error) {
	return loginWithRefresh(ctx, ep, "pop3", func(secret string) (*pop3.Client, error) {
		c, err := connectPOP3(ctx, ep)
		if err != nil {
			return nil, err
		}
		if err := loginPOP3(c, ep, secret); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
}

// connectPOP3 opens and secures a POP3 connection, up to the point of login.
func connectPOP3(ctx context.Context, ep *Endpoint) (*pop3.Client, error) {
	conn, err := ep.dialTCP(ctx)
	if err != nil {
		return nil, &ConnectError{Proto: "pop3", Addr: ep.Addr, Op: "dial", Err: err}
	}
	if ep.TLS == TLSImplicit {
		tc, err := ep.handshake(ctx, conn)
		if err != nil {
			conn.Close()
			return nil, &ConnectError{Proto: "pop3", Addr: ep.Addr, Op: "tls", Err: err}
		}
		conn = tc
	} else {
		conn = newGreetingConn(conn, "pop3", ep.Addr)
	}
	c, err := pop3.NewClient(conn, &pop3.Options{Timeout: ep.timeout()})
	if err != nil {
		return nil, &ConnectError{Proto: "pop3", Addr: ep.Addr, Op: "greeting", Err: greetingError(conn, err)}
	}
	if ep.TLS == TLSStartTLS {
		cfg := ep.tlsConfig()
		if err := c.StartTLS(cfg); err != nil {
			c.Close()
			return nil, &ConnectError{Proto: "pop3", Addr: ep.Addr, Op: "tls", Err: describeTLSError(err, cfg.ServerName)}
		}
	}
	return c, nil
}

// loginPOP3 logs in with the mechanism the endpoint forces or the best the
// server offers.
func loginPOP3(c *pop3.Client, ep *Endpoint, secret string) error {
	fail := func(op string, err error) error {
		return &ConnectError{Proto: "pop3", Addr: ep.Addr, Op: op, Err: err}
	}
	var perr *pop3.Error
	caps, err := c.Capabilities()
	if err != nil && !errors.As(err, &perr) {
		return fail("login", err)
	}
	// CAPA is optional (RFC 1939 servers lack it): caps stays nil then.
	mech, err := choosePOP3Mech(ep, caps, c.APOPTimestamp())
	if err != nil {
		return fail("login", err)
	}
	if mech.sendsSecret() && !ep.secureLink() && !ep.AllowInsecureAuth {
		return ep.insecureAuthError("pop3", mech)
	}
	var oauth *oauthRecorder
	switch mech {
	case AuthUser:
		err = c.Login(ep.Username, secret)
	case AuthAPOP:
		err = c.APOP(ep.Username, secret)
	case AuthPlain:
		err = c.Auth(pop3.NewPlainClient("", ep.Username, secret))
	case AuthLogin:
		err = c.Auth(pop3.NewLoginClient(ep.Username, secret))
	case AuthXOAUTH2, AuthOAuthBearer:
		// Two-step: Microsoft 365 wants AUTH XOAUTH2 alone and the token
		// after "+"; RFC 5034 requires every server to accept that, and a
		// real token is too long for the AUTH line anyway.
		oauth = newOAuthClient(ep, mech, secret, true)
		err = c.Auth(oauth)
	}
	if err == nil {
		return nil
	}
	err = redact(err, secret) // some servers quote the password in -ERR
	if errors.As(err, &perr) && !perr.Temporary() {
		detail := oauth.describe()
		if sasl := strings.TrimPrefix(mech.label("pop3"), "AUTH "); detail == "" && caps != nil &&
			sasl != mech.label("pop3") && !caps.HasSASL(sasl) {
			detail = fmt.Sprintf("the server does not offer %s (it offers SASL %s)", sasl, strings.Join(caps.SASL, " "))
		}
		return &AuthError{Proto: "pop3", Addr: ep.Addr, User: ep.Username, Mech: mech, Detail: detail, Err: err}
	}
	return fail("login", err)
}

// DialIMAP connects, secures and logs in to the IMAP server.
func DialIMAP(ctx context.Context, ep *Endpoint) (*imapclient.Client, error) {
	return loginWithRefresh(ctx, ep, "imap", func(secret string) (*imapclient.Client, error) {
		c, err := connectIMAP(ctx, ep)
		if err != nil {
			return nil, err
		}
		if err := loginIMAP(c, ep, secret); err != nil {
			c.Close()
			return nil, err
		}
		return c, nil
	})
}

// connectIMAP opens and secures an IMAP connection, up to the point of login.
func connectIMAP(ctx context.Context, ep *Endpoint) (*imapclient.Client, error) {
	conn, err := ep.dialTCP(ctx)
	if err != nil {
		return nil, &ConnectError{Proto: "imap", Addr: ep.Addr, Op: "dial", Err: err}
	}
	opts := &imapclient.Options{TLSConfig: ep.tlsConfig()}
	if ep.TLS != TLSImplicit {
		gc := newGreetingConn(conn, "imap", ep.Addr)
		if err := gc.probe(ep.timeout()); err != nil {
			conn.Close()
			return nil, &ConnectError{Proto: "imap", Addr: ep.Addr, Op: "greeting", Err: greetingError(gc, err)}
		}
		conn = gc
	}
	var c *imapclient.Client
	switch ep.TLS {
	case TLSImplicit:
		tc, err := ep.handshake(ctx, conn)
		if err != nil {
			conn.Close()
			return nil, &ConnectError{Proto: "imap", Addr: ep.Addr, Op: "tls", Err: err}
		}
		c = imapclient.New(tc, opts)
	case TLSStartTLS:
		// STARTTLS is sent whatever the greeting announced, so a man in the
		// middle who strips the capability makes the run fail rather than
		// go on in plain text.
		conn.SetDeadline(time.Now().Add(ep.timeout()))
		c, err = imapclient.NewStartTLS(conn, opts)
		if perr := greetingError(conn, nil); perr != nil {
			conn.Close()
			return nil, &ConnectError{Proto: "imap", Addr: ep.Addr, Op: "greeting", Err: perr}
		}
		if err != nil {
			conn.Close()
			return nil, &ConnectError{Proto: "imap", Addr: ep.Addr, Op: "tls", Err: describeTLSError(err, opts.TLSConfig.ServerName)}
		}
		conn.SetDeadline(time.Time{})
	default:
		c = imapclient.New(conn, opts)
	}
	if err := withDeadline(c, ep.timeout(), c.WaitGreeting); err != nil {
		c.Close()
		return nil, &ConnectError{Proto: "imap", Addr: ep.Addr, Op: "greeting", Err: greetingError(conn, err)}
	}
	return c, nil
}

// loginIMAP logs in with the mechanism the endpoint forces or the best the
// server offers.
func loginIMAP(c *imapclient.Client, ep *Endpoint, secret string) error {
	fail := func(err error) error {
		return &ConnectError{Proto: "imap", Addr: ep.Addr, Op: "login", Err: redact(err, secret)}
	}
	if c.State() != imap.ConnStateNotAuthenticated {
		return fail(fmt.Errorf("the server is in state %v before login (PREAUTH is not supported)", c.State()))
	}
	var caps imap.CapSet
	if err := withDeadline(c, ep.timeout(), func() error {
		caps = c.Caps()
		if caps == nil {
			return errors.New("no CAPABILITY reply")
		}
		return nil
	}); err != nil {
		return fail(err)
	}
	within := func(f func() error) error { return withDeadline(c, ep.timeout(), f) }
	return logInIMAP(goIMAPLogin{c}, ep, caps, secret, within)
}

// imapLogin is what the login flow needs of an IMAP client: go-imap's, for
// DialIMAP, and imapappend's Setup, for the APPEND connections.
type imapLogin interface {
	login(username, password string) error
	authenticate(client sasl.Client) error
}

type goIMAPLogin struct{ c *imapclient.Client }

func (l goIMAPLogin) login(username, password string) error {
	return l.c.Login(username, password).Wait()
}
func (l goIMAPLogin) authenticate(client sasl.Client) error { return l.c.Authenticate(client) }

// logInIMAP is the one IMAP login flow: it chooses the mechanism the
// endpoint forces or the best the server offers (caps), refuses to send a
// password in plain text, logs in through l within the deadline that
// within sets, and maps a failure to an AuthError or a ConnectError.
func logInIMAP(l imapLogin, ep *Endpoint, caps imap.CapSet, secret string, within func(func() error) error) error {
	mech, err := chooseIMAPMech(ep, caps)
	if err != nil {
		return &ConnectError{Proto: "imap", Addr: ep.Addr, Op: "login", Err: redact(err, secret)}
	}
	if mech.sendsSecret() && !ep.secureLink() && !ep.AllowInsecureAuth {
		return ep.insecureAuthError("imap", mech)
	}
	var oauth *oauthRecorder
	login := func() error {
		switch mech {
		case AuthLogin:
			return l.login(ep.Username, secret)
		case AuthPlain:
			return l.authenticate(sasl.NewPlainClient("", ep.Username, secret))
		default:
			oauth = newOAuthClient(ep, mech, secret, false)
			return l.authenticate(oauth)
		}
	}
	if err := within(login); err != nil {
		return loginError(err, ep, mech, caps, oauth, secret)
	}
	return nil
}

// dialAppendClient connects, secures and logs in a connection for APPENDs,
// with the same steps, mechanism choice and errors as DialIMAP. timeout
// bounds each APPEND's reply.
func dialAppendClient(ctx context.Context, ep *Endpoint, timeout time.Duration) (*imapappend.Client, error) {
	return loginWithRefresh(ctx, ep, "imap", func(secret string) (*imapappend.Client, error) {
		s, caps, err := connectAppendIMAP(ctx, ep)
		if err != nil {
			return nil, err
		}
		caps, err = loginAppendIMAP(s, caps, ep, secret)
		if err != nil {
			s.NetConn().Close()
			return nil, err
		}
		return imapappend.NewClient(s.NetConn(), caps, &imapappend.Options{Timeout: timeout}), nil
	})
}

// connectAppendIMAP opens and secures an IMAP connection for APPENDs, up
// to the point of login, and returns the capabilities the server announced.
func connectAppendIMAP(ctx context.Context, ep *Endpoint) (*imapappend.Setup, imap.CapSet, error) {
	fail := func(op string, err error) error {
		return &ConnectError{Proto: "imap", Addr: ep.Addr, Op: op, Err: err}
	}
	conn, err := ep.dialTCP(ctx)
	if err != nil {
		return nil, nil, fail("dial", err)
	}
	if ep.TLS == TLSImplicit {
		tc, err := ep.handshake(ctx, conn)
		if err != nil {
			conn.Close()
			return nil, nil, fail("tls", err)
		}
		conn = tc
	} else {
		conn = newGreetingConn(conn, "imap", ep.Addr)
	}
	s := imapappend.NewSetup(conn)
	conn.SetDeadline(time.Now().Add(ep.timeout()))
	caps, err := s.Greeting()
	if err != nil {
		conn.Close()
		return nil, nil, fail("greeting", greetingError(conn, err))
	}
	if ep.TLS == TLSStartTLS {
		// As in connectIMAP, STARTTLS is sent whatever the greeting said.
		err := s.StartTLS(func(conn net.Conn) (net.Conn, error) { return ep.handshake(ctx, conn) })
		if err != nil {
			conn.Close()
			return nil, nil, fail("tls", err)
		}
		caps = nil // what was said in plain text no longer counts
	}
	if caps == nil {
		if caps, err = s.Capability(); err != nil {
			s.NetConn().Close()
			return nil, nil, fail("capability", err)
		}
	}
	s.NetConn().SetDeadline(time.Time{})
	return s, caps, nil
}

// loginAppendIMAP logs in through logInIMAP and returns the capabilities
// after login.
func loginAppendIMAP(s *imapappend.Setup, caps imap.CapSet, ep *Endpoint, secret string) (imap.CapSet, error) {
	conn := s.NetConn()
	conn.SetDeadline(time.Now().Add(ep.timeout()))
	defer conn.SetDeadline(time.Time{})
	l := &appendLogin{s: s}
	if err := logInIMAP(l, ep, caps, secret, func(f func() error) error { return f() }); err != nil {
		return nil, err
	}
	if l.caps != nil {
		return l.caps, nil
	}
	caps, err := s.Capability()
	if err != nil {
		return nil, &ConnectError{Proto: "imap", Addr: ep.Addr, Op: "login", Err: redact(err, secret)}
	}
	return caps, nil
}

// appendLogin keeps the capabilities a login reply lists.
type appendLogin struct {
	s    *imapappend.Setup
	caps imap.CapSet
}

func (l *appendLogin) login(username, password string) (err error) {
	l.caps, err = l.s.Login(username, password)
	return err
}

func (l *appendLogin) authenticate(client sasl.Client) (err error) {
	l.caps, err = l.s.Authenticate(client)
	return err
}

// loginError turns a failed IMAP login into an AuthError when the server
// refused the credentials, and into a ConnectError otherwise.
func loginError(err error, ep *Endpoint, mech AuthMech, caps imap.CapSet, oauth *oauthRecorder, secret string) error {
	var ierr *imap.Error
	// After an OAuth2 error challenge the token is known to be refused,
	// whatever the final reply: go-imap sends the empty answer the
	// challenge asks for as "=", which Dovecot rejects with BAD.
	refusedToken := oauth != nil && len(oauth.failure) > 0 && errors.As(err, &ierr)
	if refusedToken || errors.As(err, &ierr) && ierr.Type == imap.StatusResponseTypeNo && !temporaryIMAPCode(ierr.Code) &&
		ierr.Code != imap.ResponseCodePrivacyRequired {
		detail := oauth.describe()
		if sasl := strings.TrimPrefix(mech.label("imap"), "AUTHENTICATE "); detail == "" && mech != AuthLogin &&
			!caps.Has(imap.Cap("AUTH="+sasl)) {
			detail = fmt.Sprintf("the server does not offer %s (it offers %s)", sasl, authCaps(caps))
		}
		return &AuthError{Proto: "imap", Addr: ep.Addr, User: ep.Username, Mech: mech, Detail: detail, Err: redact(err, secret)}
	}
	if errors.As(err, &ierr) && ierr.Code == imap.ResponseCodePrivacyRequired {
		err = fmt.Errorf("%w; use --imap-tls starttls or implicit", err)
	}
	return &ConnectError{Proto: "imap", Addr: ep.Addr, Op: "login", Err: redact(err, secret)}
}

// authCaps lists the AUTH= capabilities, for messages.
func authCaps(caps imap.CapSet) string {
	var out []string
	for c := range caps {
		if m, ok := strings.CutPrefix(string(c), "AUTH="); ok {
			out = append(out, m)
		}
	}
	if len(out) == 0 {
		return "no SASL mechanism"
	}
	slices.Sort(out)
	return "AUTHENTICATE " + strings.Join(out, " ")
}

// withDeadline runs f, closing the client if f has not returned within d.
// go-imap waits for a tagged reply without a deadline of its own, and a
// server that never answers must not hang the run.
func withDeadline(c *imapclient.Client, d time.Duration, f func() error) error {
	t := time.AfterFunc(d, func() { c.Close() })
	err := f()
	if !t.Stop() && err != nil {
		return fmt.Errorf("no reply within %v: %w", d, err)
	}
	return err
}

// redact removes a secret from an error's text, in case a server echoes it,
// also in the base64 forms of a SASL payload.
// The error stays unwrappable, so its type still decides what happens next.
func redact(err error, secret string) error {
	if err == nil || secret == "" {
		return err
	}
	text := pop3.Redact(err.Error(), secret)
	if text == err.Error() {
		return err
	}
	return &redactedError{text: text, err: err}
}

type redactedError struct {
	text string
	err  error
}

func (e *redactedError) Error() string { return e.text }
func (e *redactedError) Unwrap() error { return e.err }

// TLSError explains a failed TLS handshake in one line: which host, and
// why its certificate was not accepted. It wraps the original error, so
// errors.As still finds the x509 error types.
type TLSError struct {
	Host string // the name the certificate was checked against
	Why  string
	Err  error
}

func (e *TLSError) Error() string { return e.Why }
func (e *TLSError) Unwrap() error { return e.Err }

// describeTLSError turns a handshake failure into a TLSError saying why the
// certificate of host was refused.
func describeTLSError(err error, host string) error {
	var (
		ua   x509.UnknownAuthorityError
		hn   x509.HostnameError
		ci   x509.CertificateInvalidError
		rec  tls.RecordHeaderError
		alrt tls.AlertError
	)
	var why string
	switch {
	case errors.As(err, &rec):
		why = fmt.Sprintf("%s did not answer with TLS: this port speaks plain text", host)
	case errors.As(err, &alrt):
		why = fmt.Sprintf("%s refused the TLS handshake: %v", host, err)
	case errors.As(err, &ua):
		why = fmt.Sprintf("the certificate of %s is signed by an unknown authority", host)
		if ua.Cert != nil && ua.Cert.Issuer.CommonName != "" {
			why += fmt.Sprintf(" (issuer %q)", ua.Cert.Issuer.CommonName)
		}
	case errors.As(err, &hn):
		why = fmt.Sprintf("the certificate does not match the name %s (%s)", host, strings.TrimPrefix(hn.Error(), "x509: "))
	case errors.As(err, &ci) && ci.Reason == x509.Expired:
		why = fmt.Sprintf("the certificate of %s is expired or not yet valid", host)
		if ci.Cert != nil {
			why += fmt.Sprintf(" (valid from %s to %s; check this computer's clock too)",
				ci.Cert.NotBefore.UTC().Format(time.DateOnly), ci.Cert.NotAfter.UTC().Format(time.DateOnly))
		}
	case errors.As(err, &ci):
		why = fmt.Sprintf("the certificate of %s is not valid: %v", host, ci.Error())
	default:
		return err
	}
	return &TLSError{Host: host, Why: why, Err: err}
}
