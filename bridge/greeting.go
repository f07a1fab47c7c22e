package bridge

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/pop2imap/pop2imap/internal/errkind"
)

// greetingGrace is how long a plain-text or STARTTLS connection to an
// implicit-TLS port waits for the server's greeting before concluding that
// the server is waiting for a TLS handshake instead. Real servers greet at
// once; without it the run would wait the whole --timeout.
var greetingGrace = 3 * time.Second

// implicitTLSPort reports whether port is where proto usually speaks
// implicit TLS. Tests replace it to treat a random port as one.
var implicitTLSPort = func(proto, port string) bool {
	return proto == "pop3" && port == "995" || proto == "imap" && port == "993"
}

// TLSPortError is a plain-text or STARTTLS connection to a port that
// speaks implicit TLS: the server sent no greeting within the grace period
// on an implicit-TLS port, or sent a TLS record where the greeting belongs.
type TLSPortError struct {
	Proto, Addr string
	Grace       time.Duration // the wait that ran out; 0 when a TLS record came
}

func (e *TLSPortError) Error() string {
	what := fmt.Sprintf("no greeting within %v on an implicit-TLS port", e.Grace)
	if e.Grace == 0 {
		what = "the server answered with TLS"
	}
	return fmt.Sprintf("%s: the server expects TLS from the start; use --%s-tls implicit (tls = \"implicit\" in a config file)",
		what, e.Proto)
}

// ErrorKind is errkind.Config: the TLS mode does not fit the port.
func (e *TLSPortError) ErrorKind() errkind.Kind { return errkind.Config }

// greetingConn watches the first read of a connection that is not
// protected by TLS from the start, to recognise an implicit-TLS server at
// once. Later reads pass straight through.
type greetingConn struct {
	net.Conn
	proto, addr string
	tlsPort     bool

	pending []byte // read by probe, not yet by the client

	mu       sync.Mutex
	first    bool      // the first read is done
	deadline time.Time // the read deadline the client asked for
	err      *TLSPortError
}

func newGreetingConn(conn net.Conn, proto, addr string) *greetingConn {
	_, port, _ := net.SplitHostPort(addr)
	return &greetingConn{Conn: conn, proto: proto, addr: addr, tlsPort: implicitTLSPort(proto, port)}
}

func (c *greetingConn) SetDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetDeadline(t)
}

func (c *greetingConn) SetReadDeadline(t time.Time) error {
	c.mu.Lock()
	c.deadline = t
	c.mu.Unlock()
	return c.Conn.SetReadDeadline(t)
}

// probe reads the start of the greeting before the protocol client runs,
// for a client (go-imap) that reads in a goroutine of its own and does not
// report why its read failed. The bytes read are handed to the client.
func (c *greetingConn) probe(timeout time.Duration) error {
	c.mu.Lock()
	c.deadline = time.Now().Add(timeout)
	c.mu.Unlock()
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	c.Conn.SetReadDeadline(time.Time{})
	c.mu.Lock()
	c.deadline = time.Time{}
	c.mu.Unlock()
	c.pending = buf[:n]
	if n > 0 {
		return nil
	}
	return err
}

func (c *greetingConn) Read(p []byte) (int, error) {
	if len(c.pending) > 0 {
		n := copy(p, c.pending)
		c.pending = c.pending[n:]
		return n, nil
	}
	c.mu.Lock()
	if c.first {
		c.mu.Unlock()
		return c.Conn.Read(p)
	}
	c.first = true
	deadline := c.deadline
	c.mu.Unlock()
	grace := greetingGrace
	if c.tlsPort {
		if limit := time.Now().Add(grace); deadline.IsZero() || limit.Before(deadline) {
			c.Conn.SetReadDeadline(limit)
		}
	}
	n, err := c.Conn.Read(p)
	if c.tlsPort {
		c.Conn.SetReadDeadline(deadline)
	}
	var nerr net.Error
	switch {
	case n >= 2 && (p[0] == 0x15 || p[0] == 0x16) && p[1] == 0x03:
		// A TLS alert or handshake record: the server speaks TLS.
		c.setErr(&TLSPortError{Proto: c.proto, Addr: c.addr})
		return 0, c.err
	case n == 0 && c.tlsPort && errors.As(err, &nerr) && nerr.Timeout():
		c.setErr(&TLSPortError{Proto: c.proto, Addr: c.addr, Grace: grace})
		return 0, c.err
	}
	return n, err
}

func (c *greetingConn) setErr(err *TLSPortError) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
}

// portError returns the TLSPortError the first read found, if any. The
// protocol clients do not all wrap the read error they got, so the dial
// functions ask here after a failed greeting.
func (c *greetingConn) portError() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		return nil
	}
	return c.err
}

// greetingError returns the TLSPortError conn's first read found, in place
// of the error the protocol client made of it, or err.
func greetingError(conn net.Conn, err error) error {
	if gc, ok := conn.(*greetingConn); ok {
		if perr := gc.portError(); perr != nil {
			return perr
		}
	}
	return err
}
