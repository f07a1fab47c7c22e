// Package testcert makes throwaway TLS certificates for tests: a fresh
// certificate authority, and server certificates it signs for 127.0.0.1 and
// "localhost". Nothing here is fit for production (the keys never leave
// memory unless written on purpose, and every call makes new ones); it
// exists so that each test package does not carry its own copy of the same
// forty lines of crypto/x509.
//
// The package is for tests only: the pop2imap binary must not link it.
package testcert

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
)

// serial numbers the certificates, so that no two a process makes share one.
var serial atomic.Int64

// CA is a throwaway certificate authority.
type CA struct {
	// Cert is the authority's own certificate, the one clients trust.
	Cert *x509.Certificate
	key  *ecdsa.PrivateKey
}

// Leaf describes a server certificate. The zero value is a certificate for
// 127.0.0.1 and "localhost", valid from an hour ago for a week.
type Leaf struct {
	// DNSNames are added to "localhost".
	DNSNames []string
	// NotBefore and NotAfter, when not zero, replace the default validity.
	NotBefore, NotAfter time.Time
}

// NewCA makes a fresh certificate authority, valid from an hour ago for a
// week.
func NewCA() (*CA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial.Add(1)),
		Subject:               pkix.Name{CommonName: "pop2imap test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(7 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: cert, key: key}, nil
}

// PEM returns the authority's certificate in PEM form, as a CA file holds
// it.
func (ca *CA) PEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw})
}

// Pool returns a new pool that trusts only this authority.
func (ca *CA) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	return pool
}

// Issue makes a server certificate signed by the authority.
func (ca *CA) Issue(l Leaf) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	notBefore, notAfter := time.Now().Add(-time.Hour), time.Now().Add(7*24*time.Hour)
	if !l.NotBefore.IsZero() {
		notBefore = l.NotBefore
	}
	if !l.NotAfter.IsZero() {
		notAfter = l.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial.Add(1)),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     append([]string{"localhost"}, l.DNSNames...),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, &key.PublicKey, ca.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// WriteServerFiles issues a server certificate with the zero Leaf and writes
// ca.pem, server.pem and server.key (PKCS #8, mode 0600) into dir, as a
// server such as Dovecot reads them. It returns the path of ca.pem.
func (ca *CA) WriteServerFiles(dir string) (caFile string, err error) {
	cert, err := ca.Issue(Leaf{})
	if err != nil {
		return "", err
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(cert.PrivateKey)
	if err != nil {
		return "", err
	}
	files := []struct {
		name  string
		block *pem.Block
		mode  os.FileMode
	}{
		{"ca.pem", &pem.Block{Type: "CERTIFICATE", Bytes: ca.Cert.Raw}, 0o644},
		{"server.pem", &pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}, 0o644},
		{"server.key", &pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}, 0o600},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), pem.EncodeToMemory(f.block), f.mode); err != nil {
			return "", err
		}
	}
	return filepath.Join(dir, "ca.pem"), nil
}

// New makes a fresh authority and ends the test if it cannot.
func New(t testing.TB) *CA {
	t.Helper()
	ca, err := NewCA()
	if err != nil {
		t.Fatal(err)
	}
	return ca
}

// ServerConfig returns a server configuration with a certificate issued
// for l, and ends the test if it cannot.
func (ca *CA) ServerConfig(t testing.TB, l Leaf) *tls.Config {
	t.Helper()
	cert, err := ca.Issue(l)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}}
}

// ClientConfig returns a client configuration that trusts only this
// authority. serverName may be empty, to let the dialer take it from the
// address.
func (ca *CA) ClientConfig(serverName string) *tls.Config {
	return &tls.Config{RootCAs: ca.Pool(), ServerName: serverName}
}

// Configs is the common case: a server configuration with a fresh
// certificate for 127.0.0.1 and "localhost", and a client configuration
// that trusts it (and nothing else) with no ServerName set.
func Configs(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	ca := New(t)
	return ca.ServerConfig(t, Leaf{}), ca.ClientConfig("")
}
