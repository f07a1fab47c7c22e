package testcert

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// handshake runs one TLS handshake over loopback and returns the client's
// error.
func handshake(server, client *tls.Config) error {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", server)
	if err != nil {
		return err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		c.(*tls.Conn).Handshake()
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return tls.Client(c, client).Handshake()
}

// TestTrust: a client trusts a certificate of its own authority for
// 127.0.0.1, localhost and extra names, and refuses another authority's,
// an expired one and a name the certificate does not carry.
func TestTrust(t *testing.T) {
	ca, other := New(t), New(t)
	expired := Leaf{NotBefore: time.Now().Add(-48 * time.Hour), NotAfter: time.Now().Add(-24 * time.Hour)}
	for _, tc := range []struct {
		name       string
		leaf       Leaf
		client     *tls.Config
		wantRefuse bool
	}{
		{"ip", Leaf{}, ca.ClientConfig("127.0.0.1"), false},
		{"localhost", Leaf{}, ca.ClientConfig("localhost"), false},
		{"extra name", Leaf{DNSNames: []string{"pop.example.test"}}, ca.ClientConfig("pop.example.test"), false},
		{"wrong name", Leaf{}, ca.ClientConfig("evil.example.test"), true},
		{"other authority", Leaf{}, other.ClientConfig("localhost"), true},
		{"expired", expired, ca.ClientConfig("localhost"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := handshake(ca.ServerConfig(t, tc.leaf), tc.client)
			if tc.wantRefuse && err == nil {
				t.Fatal("handshake succeeded")
			}
			if !tc.wantRefuse && err != nil {
				t.Fatal(err)
			}
		})
	}
	var inv x509.CertificateInvalidError
	err := handshake(ca.ServerConfig(t, expired), ca.ClientConfig("localhost"))
	if !errors.As(err, &inv) || inv.Reason != x509.Expired {
		t.Errorf("expired certificate: %v, want an x509.Expired error", err)
	}
}

// TestServerFiles: the files written load as a key pair that a client
// trusting ca.pem accepts, and the key is private to its owner.
func TestServerFiles(t *testing.T) {
	dir := t.TempDir()
	caFile, err := New(t).WriteServerFiles(dir)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(dir, "server.pem"), filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		t.Fatal("ca.pem holds no certificate")
	}
	if err := handshake(&tls.Config{Certificates: []tls.Certificate{cert}}, &tls.Config{RootCAs: pool, ServerName: "localhost"}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, "server.key"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("server.key has mode %v, want 0600", fi.Mode().Perm())
	}
}
