package bridge

import (
	"crypto/x509"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
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
