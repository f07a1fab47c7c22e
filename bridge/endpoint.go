package bridge

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"
)

// WithDefaultPort adds the protocol's usual port when addr has none: tlsPort
// with implicit TLS, plainPort otherwise.
func WithDefaultPort(addr string, mode TLSMode, tlsPort, plainPort int) (string, error) {
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if host == "" {
			return "", fmt.Errorf("no host in %q", addr)
		}
		if _, err := strconv.ParseUint(port, 10, 16); err != nil {
			return "", fmt.Errorf("bad port in %q", addr)
		}
		return addr, nil
	}
	port := plainPort
	if mode == TLSImplicit {
		port = tlsPort
	}
	host := strings.TrimSuffix(strings.TrimPrefix(addr, "["), "]")
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// LoadRoots returns the system's trusted roots plus the PEM certificates in
// caFile.
func LoadRoots(caFile string) (*x509.CertPool, error) {
	pool, err := x509.SystemCertPool()
	if err != nil {
		pool = x509.NewCertPool()
	}
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("no PEM certificate found in %s", caFile)
	}
	return pool, nil
}

// EndpointSpec is one side of an account as the user wrote it, on the
// command line, in the bridge's configuration file or in a batch CSV row.
// Build is the one place that turns it into an Endpoint, so that the three
// agree on defaults, ports, mechanisms and what is refused.
type EndpointSpec struct {
	Proto  string // "pop3" or "imap"
	Server string // HOST or HOST:PORT
	User   string
	TLS    string // implicit (""), starttls or none
	Auth   string // a mechanism ParseAuthMech knows; "" is auto
	// CAFile, when set, adds its PEM certificates to the trusted roots;
	// the caller has made a relative path absolute.
	CAFile            string
	TLSServerName     string
	AllowInsecureAuth bool
	Timeout           time.Duration // each command; 0 means DefaultTimeout
	Secret            SecretFunc
	// OAuth2 says that Secret gives an access token, not a password: a
	// token command or file, or an OAuth2 mechanism.
	OAuth2 bool
}

// SpecError is a field of an EndpointSpec that cannot work. Field is the
// spec's name for it (server, user, tls, auth, ca_file); each caller
// names it in its own syntax (--pop3-tls, pop3.tls, the CSV column).
type SpecError struct {
	Proto, Field string
	Value        string // what was written, when it is worth repeating
	Err          error
}

func (e *SpecError) Error() string { return e.Err.Error() }
func (e *SpecError) Unwrap() error { return e.Err }

// Build checks the spec and returns the endpoint it describes: the TLS mode
// (implicit by default), the protocol's usual port when Server has none
// (995 and 110 for POP3, 993 and 143 for IMAP), the login mechanism, the
// trusted roots, and the refusal to send a password in plain text to a
// host that is not loopback unless AllowInsecureAuth.
func (s EndpointSpec) Build() (*Endpoint, error) {
	bad := func(field string, err error) error { return &SpecError{Proto: s.Proto, Field: field, Err: err} }
	if s.Server == "" {
		return nil, bad("server", fmt.Errorf("no %s server given", s.Proto))
	}
	if s.User == "" {
		return nil, bad("user", fmt.Errorf("no %s user given", s.Proto))
	}
	if s.Timeout < 0 {
		return nil, bad("timeout", fmt.Errorf("a negative timeout (%v) cannot work", s.Timeout))
	}
	mode := TLSImplicit
	if s.TLS != "" {
		var err error
		if mode, err = ParseTLSMode(s.TLS); err != nil {
			return nil, bad("tls", err)
		}
	}
	tlsPort, plainPort := 993, 143
	if s.Proto == "pop3" {
		tlsPort, plainPort = 995, 110
	}
	addr, err := WithDefaultPort(s.Server, mode, tlsPort, plainPort)
	if err != nil {
		return nil, bad("server", err)
	}
	auth := s.Auth
	if auth == "" {
		auth = "auto"
	}
	mech, err := ParseAuthMech(s.Proto, auth)
	if err != nil {
		return nil, bad("auth", err)
	}
	if s.OAuth2 && mech != AuthAuto && !mech.OAuth2() {
		return nil, &SpecError{Proto: s.Proto, Field: "auth", Value: string(mech),
			Err: fmt.Errorf("this mechanism takes a password, not an OAuth2 access token (use xoauth2 or oauthbearer with a token)")}
	}
	tlsConfig := &tls.Config{ServerName: s.TLSServerName}
	if s.CAFile != "" {
		pool, err := LoadRoots(s.CAFile)
		if err != nil {
			return nil, bad("ca_file", err)
		}
		tlsConfig.RootCAs = pool
	}
	ep := &Endpoint{Addr: addr, Username: s.User, TLS: mode, TLSConfig: tlsConfig, Secret: s.Secret,
		Auth: mech, OAuth2: s.OAuth2 || mech.OAuth2(), AllowInsecureAuth: s.AllowInsecureAuth, Timeout: s.Timeout}
	if err := ep.CheckAuthAllowed(s.Proto); err != nil {
		return nil, err
	}
	return ep, nil
}
