package bridge

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/pop2imap/pop2imap/internal/testcert"
	"github.com/pop2imap/pop2imap/internal/testnet"
	"github.com/pop2imap/pop2imap/pop3"
)

func TestCheckAuthAllowed(t *testing.T) {
	tests := []struct {
		addr  string
		mode  TLSMode
		allow bool
		ok    bool
	}{
		{"127.0.0.1:110", TLSNone, false, true},
		{"127.8.9.10:110", TLSNone, false, true},
		{"[::1]:110", TLSNone, false, true},
		{"localhost:110", TLSNone, false, true},
		{"mail.example.com:110", TLSNone, false, false},
		{"192.0.2.7:110", TLSNone, false, false},
		{"mail.example.com:110", TLSNone, true, true},
		{"mail.example.com:110", TLSStartTLS, false, true},
		{"mail.example.com:995", TLSImplicit, false, true},
		// A name that merely starts like loopback is not loopback.
		{"127.0.0.1.example.com:110", TLSNone, false, false},
	}
	for _, tt := range tests {
		t.Run(tt.addr+"/"+tt.mode.String(), func(t *testing.T) {
			ep := &Endpoint{Addr: tt.addr, TLS: tt.mode, AllowInsecureAuth: tt.allow}
			err := ep.CheckAuthAllowed("pop3")
			if (err == nil) != tt.ok {
				t.Fatalf("CheckAuthAllowed = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInsecureAuth) {
				t.Errorf("error %v does not wrap ErrInsecureAuth", err)
			}
		})
	}
}

func TestParseTLSMode(t *testing.T) {
	for in, want := range map[string]TLSMode{"implicit": TLSImplicit, "STARTTLS": TLSStartTLS, "none": TLSNone} {
		got, err := ParseTLSMode(in)
		if err != nil || got != want {
			t.Errorf("ParseTLSMode(%q) = %v, %v", in, got, err)
		}
	}
	if _, err := ParseTLSMode("maybe"); err == nil {
		t.Error("ParseTLSMode accepted a bad mode")
	}
}

// TestCheckAuthAllowedByMechanism: without TLS to a remote host only a
// forced APOP passes, since it alone keeps the password off the wire; and
// a token with a password mechanism is refused.
func TestCheckAuthAllowedByMechanism(t *testing.T) {
	for _, tt := range []struct {
		proto string
		mech  AuthMech
		oauth bool
		ok    bool
	}{
		{"pop3", AuthAuto, false, false},
		{"pop3", AuthUser, false, false},
		{"pop3", AuthPlain, false, false},
		{"pop3", AuthLogin, false, false},
		{"pop3", AuthXOAUTH2, false, false},
		{"pop3", AuthOAuthBearer, false, false},
		{"pop3", AuthAuto, true, false},
		{"pop3", AuthAPOP, false, true},
		{"imap", AuthLogin, false, false},
		{"imap", AuthPlain, false, false},
		{"imap", AuthXOAUTH2, true, false},
	} {
		ep := &Endpoint{Addr: "mail.example.com:110", TLS: TLSNone, Auth: tt.mech, OAuth2: tt.oauth}
		err := ep.CheckAuthAllowed(tt.proto)
		if (err == nil) != tt.ok {
			t.Errorf("%s %s oauth=%v: %v, want ok=%v", tt.proto, tt.mech, tt.oauth, err, tt.ok)
		}
		if err != nil && !errors.Is(err, ErrInsecureAuth) {
			t.Errorf("%s %s: %v does not wrap ErrInsecureAuth", tt.proto, tt.mech, err)
		}
		if err != nil && tt.mech != AuthAuto && !strings.Contains(err.Error(), tt.mech.label(tt.proto)) {
			t.Errorf("%s %s: %q does not name the mechanism", tt.proto, tt.mech, err)
		}
		ep.TLS = TLSStartTLS
		if err := ep.CheckAuthAllowed(tt.proto); err != nil {
			t.Errorf("%s %s over STARTTLS: %v", tt.proto, tt.mech, err)
		}
	}
	ep := &Endpoint{Addr: "127.0.0.1:110", TLS: TLSNone, Auth: AuthPlain, OAuth2: true}
	if err := ep.CheckAuthAllowed("pop3"); err == nil || errors.Is(err, ErrInsecureAuth) {
		t.Errorf("a token with AUTH PLAIN: %v, want a refusal that is not about encryption", err)
	}
}

func TestParseAuthMech(t *testing.T) {
	for _, tt := range []struct {
		proto, in string
		want      AuthMech
		ok        bool
	}{
		{"pop3", "auto", AuthAuto, true},
		{"pop3", "USER", AuthUser, true},
		{"pop3", "apop", AuthAPOP, true},
		{"pop3", "login", AuthLogin, true},
		{"pop3", "xoauth2", AuthXOAUTH2, true},
		{"imap", "oauthbearer", AuthOAuthBearer, true},
		{"imap", "plain", AuthPlain, true},
		{"imap", "apop", "", false},
		{"imap", "user", "", false},
		{"pop3", "cram-md5", "", false},
	} {
		got, err := ParseAuthMech(tt.proto, tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseAuthMech(%s, %q) = %q, %v; want %q ok=%v", tt.proto, tt.in, got, err, tt.want, tt.ok)
		}
	}
}

// TestChooseMechanism: with nothing forced, the best mechanism the server
// offers; a token means XOAUTH2 unless only OAUTHBEARER is offered; APOP is
// preferred only where the link is unencrypted.
func TestChooseMechanism(t *testing.T) {
	capa := func(user bool, sasl ...string) *pop3.Capabilities {
		return &pop3.Capabilities{User: user, SASL: sasl}
	}
	remote := &Endpoint{Addr: "pop.example.com:110", TLS: TLSNone, AllowInsecureAuth: true}
	secure := &Endpoint{Addr: "pop.example.com:995", TLS: TLSImplicit}
	token := &Endpoint{Addr: "pop.example.com:995", TLS: TLSImplicit, OAuth2: true}
	forced := func(m AuthMech) *Endpoint { return &Endpoint{Addr: "pop.example.com:995", Auth: m} }
	for i, tt := range []struct {
		ep   *Endpoint
		caps *pop3.Capabilities
		ts   string
		want AuthMech
	}{
		{secure, capa(true, "PLAIN", "LOGIN"), "<1@x>", AuthPlain},
		{secure, capa(true), "", AuthUser},
		{secure, capa(false, "LOGIN"), "", AuthLogin},
		{secure, capa(false), "<1@x>", AuthAPOP},
		{secure, nil, "<1@x>", AuthUser},
		{remote, capa(true, "PLAIN"), "<1@x>", AuthAPOP},
		{remote, capa(true, "PLAIN"), "", AuthPlain},
		{token, capa(true, "PLAIN", "XOAUTH2", "OAUTHBEARER"), "", AuthXOAUTH2},
		{token, capa(true, "OAUTHBEARER"), "", AuthOAuthBearer},
		{token, nil, "", AuthXOAUTH2},
		{forced(AuthLogin), capa(true, "PLAIN"), "", AuthLogin},
		{forced(AuthXOAUTH2), capa(true), "", AuthXOAUTH2},
	} {
		got, err := choosePOP3Mech(tt.ep, tt.caps, tt.ts)
		if err != nil || got != tt.want {
			t.Errorf("pop3 case %d: %q, %v; want %q", i, got, err, tt.want)
		}
	}
	if _, err := choosePOP3Mech(forced(AuthAPOP), capa(true), ""); err == nil {
		t.Error("forced APOP without a greeting timestamp was accepted")
	}

	caps := func(cs ...imap.Cap) imap.CapSet {
		set := imap.CapSet{}
		for _, c := range cs {
			set[c] = struct{}{}
		}
		return set
	}
	for i, tt := range []struct {
		ep   *Endpoint
		caps imap.CapSet
		want AuthMech
	}{
		{secure, caps("AUTH=PLAIN", "AUTH=LOGIN"), AuthPlain},
		{secure, caps(), AuthLogin},
		{token, caps("AUTH=XOAUTH2", "AUTH=OAUTHBEARER"), AuthXOAUTH2},
		{token, caps("AUTH=OAUTHBEARER"), AuthOAuthBearer},
		{forced(AuthPlain), caps(imap.CapLoginDisabled), AuthPlain},
	} {
		got, err := chooseIMAPMech(tt.ep, tt.caps)
		if err != nil || got != tt.want {
			t.Errorf("imap case %d: %q, %v; want %q", i, got, err, tt.want)
		}
	}
	for _, ep := range []*Endpoint{secure, forced(AuthLogin)} {
		if _, err := chooseIMAPMech(ep, caps(imap.CapLoginDisabled)); !errors.Is(err, ErrLoginDisabled) {
			t.Errorf("LOGINDISABLED without AUTH=PLAIN, auth %q: %v, want ErrLoginDisabled", ep.Auth, err)
		}
	}
}

// TestTLSFailuresAreExplained: each kind of certificate failure gives one
// line naming the host and the reason, and still unwraps to the x509 error
// that cmd/pop2imap picks its hint by.
func TestTLSFailuresAreExplained(t *testing.T) {
	serverTLS, clientTLS := testcert.Configs(t)
	expiredTLS := expiredServerTLS(t, clientTLS)
	var cfg atomic.Pointer[tls.Config]
	addr := testnet.Serve(t, func(conn net.Conn) {
		if c := cfg.Load(); c != nil {
			tc := tls.Server(conn, c)
			tc.Handshake()
			return
		}
		io.WriteString(conn, "+OK plain text here\r\n")
		time.Sleep(100 * time.Millisecond)
	})
	for _, tt := range []struct {
		name   string
		server *tls.Config
		client *tls.Config
		want   []string
		as     any
	}{
		{"unknown CA", serverTLS, &tls.Config{}, []string{"127.0.0.1", "unknown authority", "pop2imap test CA"}, &x509.UnknownAuthorityError{}},
		{"wrong name", serverTLS, &tls.Config{RootCAs: clientTLS.RootCAs, ServerName: "mail.example.com"}, []string{"mail.example.com", "does not match the name"}, &x509.HostnameError{}},
		{"expired", expiredTLS, clientTLS, []string{"127.0.0.1", "expired", "clock"}, &x509.CertificateInvalidError{}},
		{"not TLS", nil, clientTLS, []string{"did not answer with TLS", "plain text"}, &tls.RecordHeaderError{}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg.Store(tt.server)
			ep := &Endpoint{Addr: addr, Username: "u", TLS: TLSImplicit, TLSConfig: tt.client,
				Secret: staticSecret("p"), Timeout: 5 * time.Second}
			_, err := DialPOP3(context.Background(), ep)
			var cerr *ConnectError
			if !errors.As(err, &cerr) || cerr.Op != "tls" {
				t.Fatalf("error %v, want a ConnectError at tls", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q does not mention %q", err, w)
				}
			}
			if strings.Count(err.Error(), "\n") != 0 {
				t.Errorf("%q is more than one line", err)
			}
			switch target := tt.as.(type) {
			case *x509.UnknownAuthorityError:
				if !errors.As(err, target) {
					t.Errorf("%v does not unwrap to %T", err, target)
				}
			case *x509.HostnameError:
				if !errors.As(err, target) {
					t.Errorf("%v does not unwrap to %T", err, target)
				}
			case *x509.CertificateInvalidError:
				if !errors.As(err, target) || target.Reason != x509.Expired {
					t.Errorf("%v does not unwrap to an expired CertificateInvalidError", err)
				}
			case *tls.RecordHeaderError:
				if !errors.As(err, target) {
					t.Errorf("%v does not unwrap to %T", err, target)
				}
			}
		})
	}
}

// expiredServerTLS returns a server configuration whose certificate, signed
// by a CA the client trusts, expired yesterday.
func expiredServerTLS(t *testing.T, client *tls.Config) *tls.Config {
	t.Helper()
	ca := testcert.New(t)
	client.RootCAs.AddCert(ca.Cert)
	return ca.ServerConfig(t, testcert.Leaf{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)})
}
