package bridge

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"

	"github.com/pop2imap/pop2imap/internal/errkind"
	"github.com/pop2imap/pop2imap/pop3"
)

// AuthMech names a way to log in. The zero value, AuthAuto, lets the dial
// functions pick the best mechanism the server offers.
type AuthMech string

const (
	AuthAuto        AuthMech = ""            // the best the server offers
	AuthUser        AuthMech = "user"        // POP3 USER and PASS
	AuthAPOP        AuthMech = "apop"        // POP3 APOP: only an MD5 digest crosses the wire
	AuthPlain       AuthMech = "plain"       // SASL PLAIN: POP3 AUTH PLAIN, IMAP AUTHENTICATE PLAIN
	AuthLogin       AuthMech = "login"       // POP3 AUTH LOGIN; the IMAP LOGIN command
	AuthXOAUTH2     AuthMech = "xoauth2"     // SASL XOAUTH2 with an OAuth2 access token (Google, Microsoft)
	AuthOAuthBearer AuthMech = "oauthbearer" // SASL OAUTHBEARER (RFC 7628) with an OAuth2 access token
)

// ParseAuthMech parses the values of --pop3-auth (proto "pop3") and
// --imap-auth (proto "imap").
func ParseAuthMech(proto, s string) (AuthMech, error) {
	m := AuthMech(strings.ToLower(s))
	if m == "auto" {
		return AuthAuto, nil
	}
	valid := []AuthMech{AuthLogin, AuthPlain, AuthXOAUTH2, AuthOAuthBearer}
	if proto == "pop3" {
		valid = []AuthMech{AuthUser, AuthAPOP, AuthPlain, AuthLogin, AuthXOAUTH2, AuthOAuthBearer}
	}
	if slices.Contains(valid, m) {
		return m, nil
	}
	names := make([]string, len(valid))
	for i, v := range valid {
		names[i] = string(v)
	}
	return "", fmt.Errorf("unknown %s login mechanism %q (want auto, %s)", proto, s, strings.Join(names, ", "))
}

// OAuth2 reports whether the mechanism takes an access token rather than a
// password.
func (m AuthMech) OAuth2() bool { return m == AuthXOAUTH2 || m == AuthOAuthBearer }

// sendsSecret reports whether the mechanism puts the password or token on
// the wire as it is, readable by anyone on an unencrypted link. Only APOP
// does not.
func (m AuthMech) sendsSecret() bool { return m != AuthAPOP }

// label names the mechanism as the protocol spells it, for messages.
func (m AuthMech) label(proto string) string {
	switch m {
	case AuthAuto:
		return "auto"
	case AuthUser:
		return "USER/PASS"
	case AuthAPOP:
		return "APOP"
	case AuthLogin:
		if proto == "imap" {
			return "LOGIN"
		}
		return "AUTH LOGIN"
	}
	if proto == "imap" {
		return "AUTHENTICATE " + strings.ToUpper(string(m))
	}
	return "AUTH " + strings.ToUpper(string(m))
}

// secretWord is what the mechanism sends: a password or an access token.
func (ep *Endpoint) secretWord() string {
	if ep.usesOAuth2() {
		return "access token"
	}
	return "password"
}

func (ep *Endpoint) usesOAuth2() bool { return ep.OAuth2 || ep.Auth.OAuth2() }

// checkMech refuses combinations that cannot work: a token with a password
// mechanism.
func (ep *Endpoint) checkMech(proto string) error {
	if ep.OAuth2 && ep.Auth != AuthAuto && !ep.Auth.OAuth2() {
		return errkind.Wrap(errkind.Config, fmt.Errorf("%s login mechanism %s takes a password, not an OAuth2 access token", proto, ep.Auth))
	}
	return nil
}

// secureLink reports whether a secret may cross this link as it is: it is
// encrypted, or it never leaves this machine.
func (ep *Endpoint) secureLink() bool {
	return ep.TLS != TLSNone || isLoopbackHost(ep.Host())
}

// insecureAuthError is the refusal to send a secret in clear.
func (ep *Endpoint) insecureAuthError(proto string, m AuthMech) error {
	var err error
	switch {
	case m == AuthAuto && proto == "pop3" && !ep.usesOAuth2():
		err = fmt.Errorf("%w (the %s would cross the network unencrypted; only --pop3-auth apop avoids that)",
			ErrInsecureAuth, ep.secretWord())
	case m == AuthAuto:
		err = fmt.Errorf("%w (the %s would cross the network unencrypted)", ErrInsecureAuth, ep.secretWord())
	default:
		err = fmt.Errorf("%w (%s sends the %s as it is)", ErrInsecureAuth, m.label(proto), ep.secretWord())
	}
	return &ConnectError{Proto: proto, Addr: ep.Addr, Op: "login", Err: err}
}

// choosePOP3Mech picks how to log in to a POP3 server. caps is nil when the
// server does not know CAPA; timestamp is the APOP timestamp of its greeting.
func choosePOP3Mech(ep *Endpoint, caps *pop3.Capabilities, timestamp string) (AuthMech, error) {
	m := ep.Auth
	switch {
	case m == AuthAPOP && timestamp == "":
		return "", errkind.Wrap(errkind.Config, errors.New("the server's greeting has no APOP timestamp, so it does not offer APOP; choose another --pop3-auth"))
	case m != AuthAuto:
		// A forced mechanism is tried even when CAPA does not list it:
		// some servers offer more than they announce.
	case ep.usesOAuth2():
		m = AuthXOAUTH2
		if caps != nil && caps.HasSASL("OAUTHBEARER") && !caps.HasSASL("XOAUTH2") {
			m = AuthOAuthBearer
		}
	case !ep.secureLink() && timestamp != "":
		// Allowed to log in in clear, but APOP at least keeps the
		// password itself off the wire.
		m = AuthAPOP
	case caps == nil:
		m = AuthUser // RFC 1939 servers know nothing else
	case caps.HasSASL("PLAIN"):
		m = AuthPlain // one round trip, and any byte but NUL in a password
	case caps.User:
		m = AuthUser
	case caps.HasSASL("LOGIN"):
		m = AuthLogin
	case timestamp != "":
		m = AuthAPOP
	default:
		m = AuthUser
	}
	return m, nil
}

// chooseIMAPMech picks how to log in to an IMAP server with capabilities
// caps.
func chooseIMAPMech(ep *Endpoint, caps imap.CapSet) (AuthMech, error) {
	m := ep.Auth
	switch {
	case m == AuthLogin && caps.Has(imap.CapLoginDisabled):
		return "", loginDisabled(ep)
	case m != AuthAuto:
	case ep.usesOAuth2():
		m = AuthXOAUTH2
		if caps.Has("AUTH=OAUTHBEARER") && !caps.Has("AUTH=XOAUTH2") {
			m = AuthOAuthBearer
		}
	case caps.Has("AUTH=PLAIN"):
		m = AuthPlain
	case !caps.Has(imap.CapLoginDisabled):
		m = AuthLogin
	default:
		return "", loginDisabled(ep)
	}
	return m, nil
}

// ErrLoginDisabled is returned, wrapped, when an IMAP server says
// LOGINDISABLED and offers no other way to log in with a password.
var ErrLoginDisabled error = &errkind.Error{Kind: errkind.Config,
	Err: errors.New("the IMAP server does not accept a password login on this connection (LOGINDISABLED)")}

func loginDisabled(ep *Endpoint) error {
	if ep.TLS == TLSNone {
		return fmt.Errorf("%w; use --imap-tls starttls or implicit", ErrLoginDisabled)
	}
	return fmt.Errorf("%w; try --imap-auth plain, or ask the provider how to log in", ErrLoginDisabled)
}

// oauthRecorder wraps an OAuth2 SASL client to keep the error a server sends
// as its last challenge when it refuses a token, such as
// {"status":"401","schemes":"bearer","scope":"https://mail.google.com/"}.
type oauthRecorder struct {
	pop3.SASLClient
	failure []byte
}

func (r *oauthRecorder) Next(challenge []byte) ([]byte, error) {
	if len(challenge) > 0 {
		r.failure = append(r.failure[:0], challenge...)
	}
	return r.SASLClient.Next(challenge)
}

// describe turns the recorded error into words, or "" when there was none.
func (r *oauthRecorder) describe() string {
	if r == nil || len(r.failure) == 0 {
		return ""
	}
	var e struct {
		Status string `json:"status"`
		Scope  string `json:"scope"`
	}
	if json.Unmarshal(r.failure, &e) != nil || e.Status == "" {
		return "the server refused the token"
	}
	s := "the server refused the token (status " + printableASCII(e.Status)
	if e.Scope != "" {
		s += ", scope needed: " + printableASCII(e.Scope)
	}
	s += ")"
	switch e.Status {
	case "401", "invalid_token":
		s += ": it is expired, revoked or not valid for this account"
	case "400", "403", "insufficient_scope":
		s += ": it lacks the scope for mail access"
	}
	return s
}

// newOAuthClient returns the SASL client for an OAuth2 mechanism. The pop3
// package's XOAUTH2 and OAUTHBEARER clients speak plain SASL and serve IMAP
// as well; unlike go-sasl's OAUTHBEARER client they answer an error
// challenge, so the server can finish the exchange with a clean refusal.
// twoStep sends AUTH XOAUTH2 alone and the token after the server's "+", as
// Microsoft 365 requires on POP3.
func newOAuthClient(ep *Endpoint, m AuthMech, token string, twoStep bool) *oauthRecorder {
	if m == AuthOAuthBearer {
		host := ep.Host()
		if ep.TLSConfig != nil && ep.TLSConfig.ServerName != "" {
			host = ep.TLSConfig.ServerName
		}
		port := 0
		if _, p, err := net.SplitHostPort(ep.Addr); err == nil {
			port, _ = strconv.Atoi(p)
		}
		return &oauthRecorder{SASLClient: pop3.NewOAuthBearerClient(ep.Username, token, host, port)}
	}
	return &oauthRecorder{SASLClient: pop3.NewXOAUTH2Client(ep.Username, token, twoStep)}
}

func printableASCII(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r > 0x7e {
			return '?'
		}
		return r
	}, s)
}
