package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/errkind"
	"github.com/pop2imap/pop2imap/internal/testcert"
	"github.com/pop2imap/pop2imap/internal/testnet"
)

// TestPlainToImplicitTLSPort: a plain-text or STARTTLS client on a port
// that speaks implicit TLS fails within the grace period, not after the
// whole timeout, with an error that names --pop3-tls implicit or
// --imap-tls implicit and is a setting to fix; a TLS record where the
// greeting belongs is recognised on any port.
func TestPlainToImplicitTLSPort(t *testing.T) {
	serverTLS, _ := testcert.Configs(t)
	oldGrace, oldPort := greetingGrace, implicitTLSPort
	t.Cleanup(func() { greetingGrace, implicitTLSPort = oldGrace, oldPort })
	greetingGrace = 50 * time.Millisecond

	// A real implicit-TLS server: it waits for the client's hello.
	tlsAddr := testnet.Serve(t, func(conn net.Conn) {
		tls.Server(conn, serverTLS).Handshake()
	})
	// A server that sends a TLS alert at once.
	alertAddr := testnet.Serve(t, func(conn net.Conn) {
		conn.Write([]byte{0x15, 0x03, 0x01, 0x00, 0x02, 0x02, 0x28})
		io.Copy(io.Discard, conn)
	})
	_, tlsPort, _ := net.SplitHostPort(tlsAddr)
	implicitTLSPort = func(proto, port string) bool { return port == tlsPort }

	dials := map[string]func(context.Context, *Endpoint) error{
		"pop3": func(ctx context.Context, ep *Endpoint) error {
			c, err := DialPOP3(ctx, ep)
			if err == nil {
				c.Close()
			}
			return err
		},
		"imap": func(ctx context.Context, ep *Endpoint) error {
			c, err := DialIMAP(ctx, ep)
			if err == nil {
				c.Close()
			}
			return err
		},
		"imap append": func(ctx context.Context, ep *Endpoint) error {
			c, err := dialAppendClient(ctx, ep, ep.timeout())
			if err == nil {
				c.Close()
			}
			return err
		},
	}
	for name, dial := range dials {
		for _, mode := range []TLSMode{TLSNone, TLSStartTLS} {
			for _, addr := range []string{tlsAddr, alertAddr} {
				t.Run(name+" "+mode.String()+" "+addr, func(t *testing.T) {
					// The timeout is far longer than the test may take:
					// reaching it would fail the test by its deadline.
					ep := &Endpoint{Addr: addr, Username: "u", TLS: mode, Secret: staticSecret("p"), Timeout: time.Hour}
					ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
					defer cancel()
					err := dial(ctx, ep)
					var perr *TLSPortError
					if !errors.As(err, &perr) {
						t.Fatalf("error %v, want a TLSPortError", err)
					}
					if errkind.Of(err) != errkind.Config {
						t.Errorf("kind %q, want config", errkind.Of(err))
					}
					proto := name[:4]
					if want := "--" + proto + "-tls implicit"; !strings.Contains(err.Error(), want) {
						t.Errorf("%q does not name %s", err, want)
					}
				})
			}
		}
	}
}

// TestSlowGreetingOnPlainPort: the grace period applies only to the
// implicit-TLS ports; elsewhere a slow greeting is waited for.
func TestSlowGreetingOnPlainPort(t *testing.T) {
	oldGrace := greetingGrace
	t.Cleanup(func() { greetingGrace = oldGrace })
	greetingGrace = 20 * time.Millisecond
	addr := testnet.Serve(t, func(conn net.Conn) {
		time.Sleep(200 * time.Millisecond)
		io.WriteString(conn, "+OK slow but fine\r\n")
		io.Copy(io.Discard, conn)
	})
	ep := &Endpoint{Addr: addr, TLS: TLSNone, Timeout: 10 * time.Second}
	c, err := connectPOP3(context.Background(), ep)
	if err != nil {
		t.Fatalf("slow greeting on a plain port: %v", err)
	}
	c.Close()
}
