package pop3

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/testcert"
)

// testCert makes a certificate for pop.example.test, localhost and
// 127.0.0.1, and a pool that trusts it.
func testCert(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	ca := testcert.New(t)
	cert, err := ca.Issue(testcert.Leaf{DNSNames: []string{"pop.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	return cert, ca.Pool()
}

// tlsServer serves one STLS session on conn: greeting, CAPA in plain text,
// STLS, then CAPA and QUIT over TLS. afterOK is sent right after the +OK to
// STLS, in the same write (an injection when not empty). It reports what
// happened on the returned channel.
func tlsServer(t *testing.T, conn net.Conn, cert tls.Certificate, afterOK string) <-chan error {
	done := make(chan error, 1)
	go func() {
		defer conn.Close()
		done <- func() error {
			br := bufio.NewReader(conn)
			expect := func(r *bufio.Reader, want string) error {
				got, err := r.ReadString('\n')
				if err != nil {
					return err
				}
				if got != want {
					return errors.New("server: got " + got + ", want " + want)
				}
				return nil
			}
			conn.Write([]byte("+OK ready\r\n"))
			if err := expect(br, "CAPA\r\n"); err != nil {
				return err
			}
			conn.Write([]byte("+OK\r\nSTLS\r\nUSER\r\n.\r\n"))
			if err := expect(br, "STLS\r\n"); err != nil {
				return err
			}
			conn.Write([]byte("+OK begin TLS\r\n" + afterOK))
			tconn := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}})
			if err := tconn.Handshake(); err != nil {
				return err
			}
			tr := bufio.NewReader(tconn)
			if err := expect(tr, "CAPA\r\n"); err != nil {
				return err
			}
			tconn.Write([]byte("+OK\r\nSASL PLAIN\r\nPIPELINING\r\n.\r\n"))
			if err := expect(tr, "QUIT\r\n"); err != nil {
				return err
			}
			tconn.Write([]byte("+OK bye\r\n"))
			return nil
		}()
	}()
	return done
}

// TestStartTLS proves the STLS upgrade: the certificate is verified, CAPA is
// asked again over TLS, and plaintext injected after +OK is refused.
func TestStartTLS(t *testing.T) {
	cert, pool := testCert(t)

	t.Run("upgrade and CAPA again", func(t *testing.T) {
		client, server := net.Pipe()
		done := tlsServer(t, server, cert, "")
		c, err := NewClient(client, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if caps, err := c.Capabilities(); err != nil || !caps.STLS {
			t.Fatalf("plain CAPA = %v, %v", caps, err)
		}
		if err := c.StartTLS(&tls.Config{RootCAs: pool, ServerName: "pop.example.test"}); err != nil {
			t.Fatal(err)
		}
		caps, err := c.Capabilities() // cached from the CAPA StartTLS sent
		if err != nil || caps.STLS || !caps.Pipelining || !caps.HasSASL("PLAIN") {
			t.Fatalf("CAPA after STLS = %+v, %v; want the TLS list", caps, err)
		}
		if err := c.StartTLS(&tls.Config{RootCAs: pool, ServerName: "pop.example.test"}); err == nil {
			t.Error("second StartTLS succeeded")
		}
		if err := c.Quit(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})

	t.Run("injected plaintext after +OK", func(t *testing.T) {
		client, server := net.Pipe()
		done := tlsServer(t, server, cert, "+OK\r\nSASL PLAIN\r\n.\r\n")
		c, err := NewClient(client, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Capabilities()
		err = c.StartTLS(&tls.Config{RootCAs: pool, ServerName: "pop.example.test"})
		var perr *ProtocolError
		if !errors.As(err, &perr) {
			t.Fatalf("StartTLS = %v, want *ProtocolError", err)
		}
		if err := c.Noop(); err == nil {
			t.Error("session usable after an injection")
		}
		if err := <-done; err == nil {
			t.Error("handshake happened after an injection")
		}
	})

	t.Run("wrong host name", func(t *testing.T) {
		// TCP, not net.Pipe: the client's alert must not wait for the
		// server's unbuffered handshake write.
		client, server := tcpPair(t)
		done := tlsServer(t, server, cert, "")
		c, err := NewClient(client, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Capabilities()
		err = c.StartTLS(&tls.Config{RootCAs: pool, ServerName: "evil.example.test"})
		var herr x509.HostnameError
		if !errors.As(err, &herr) {
			t.Fatalf("StartTLS = %v, want x509.HostnameError", err)
		}
		<-done
	})

	t.Run("no host name known", func(t *testing.T) {
		c := scriptClient(t, nil, []string{"S: +OK ready"}) // STLS must not be sent
		if err := c.StartTLS(&tls.Config{RootCAs: pool}); err == nil {
			t.Fatal("StartTLS without a host name succeeded")
		}
		c.Close()
	})

	t.Run("host name from Dial", func(t *testing.T) {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		done := make(chan error, 1)
		go func() {
			conn, err := ln.Accept()
			if err != nil {
				done <- err
				return
			}
			done <- <-tlsServer(t, conn, cert, "")
		}()
		c, err := Dial(context.Background(), ln.Addr().String(), &Options{Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.Capabilities()
		// No ServerName: "127.0.0.1" from the dialed address is verified.
		if err := c.StartTLS(&tls.Config{RootCAs: pool}); err != nil {
			t.Fatal(err)
		}
		if err := c.Quit(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	})
}

// TestDialTLS proves implicit TLS: the host name comes from the address.
func TestDialTLS(t *testing.T) {
	cert, pool := testCert(t)
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	done := make(chan error, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer conn.Close()
		conn.Write([]byte("+OK ready\r\n"))
		line, err := bufio.NewReader(conn).ReadString('\n')
		if err == nil && line != "QUIT\r\n" {
			err = errors.New("got " + line)
		}
		conn.Write([]byte("+OK\r\n"))
		done <- err
	}()
	c, err := DialTLS(context.Background(), ln.Addr().String(), &tls.Config{RootCAs: pool}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.StartTLS(&tls.Config{RootCAs: pool}); err == nil {
		t.Error("StartTLS on a TLS connection succeeded")
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// tcpPair returns both ends of a loopback TCP connection.
func tcpPair(t *testing.T) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		conn, _ := ln.Accept()
		accepted <- conn
	}()
	client, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server = <-accepted
	if server == nil {
		t.Fatal("accept failed")
	}
	return client, server
}
