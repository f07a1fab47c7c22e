package dovecottest

import (
	"crypto/tls"
	"crypto/x509"

	"github.com/pop2imap/pop2imap/internal/testcert"
)

// writeTLSFiles creates a fresh CA and a server certificate signed by it for
// "localhost" and 127.0.0.1, writes ca.pem, server.pem and server.key into dir
// (the key readable by Dovecot's config process, which runs as root), and
// returns the path of ca.pem and its contents.
func writeTLSFiles(dir string) (caFile string, caPEM []byte, err error) {
	ca, err := testcert.NewCA()
	if err != nil {
		return "", nil, err
	}
	caFile, err = ca.WriteServerFiles(dir)
	if err != nil {
		return "", nil, err
	}
	return caFile, ca.PEM(), nil
}

// TLSConfig returns a client configuration that trusts only this server's CA,
// with ServerName "localhost". Each call returns a new value.
func (s *Server) TLSConfig() *tls.Config {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(s.caPEM)
	return &tls.Config{RootCAs: pool, ServerName: "localhost"}
}
