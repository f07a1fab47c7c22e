package pop3test

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/testcert"
)

const (
	testUser = "alice"
	// testPass has a space because PASS must take its argument verbatim.
	testPass = "open sesame"
)

// ioTimeout bounds every read and write in the tests, so that a server bug
// fails a test instead of hanging it.
const ioTimeout = 10 * time.Second

// threeMessages is a small maildrop used by many tests.
var threeMessages = []Message{
	{UIDL: "uid-a", Data: []byte("Subject: a\r\n\r\nbody a\r\n")},
	{UIDL: "uid-b", Data: []byte("Subject: b\r\n\r\nbody b\r\n")},
	{UIDL: "uid-c", Data: []byte("Subject: c\r\n\r\nbody c\r\n")},
}

// startServer starts a server for cfg (with the test account when cfg has
// none) holding msgs, and closes it when the test ends.
func startServer(t *testing.T, cfg Config, msgs ...Message) *Server {
	t.Helper()
	if cfg.Username == "" {
		cfg.Username, cfg.Password = testUser, testPass
	}
	s, err := NewServer(cfg)
	if err != nil {
		t.Fatalf("NewServer: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	for _, m := range msgs {
		s.AddMessage(m.UIDL, m.Data)
	}
	return s
}

// rawClient speaks POP3 by hand, so that the tests see exactly what the
// server puts on the wire.
type rawClient struct {
	t        testing.TB
	conn     net.Conn
	r        *bufio.Reader
	greeting string
}

func dial(t testing.TB, s *Server) *rawClient {
	t.Helper()
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(ioTimeout))
	c := &rawClient{t: t, conn: conn, r: bufio.NewReader(conn)}
	c.greeting = c.line()
	return c
}

// send writes the given lines, each followed by CRLF, in a single Write.
func (c *rawClient) send(lines ...string) {
	c.t.Helper()
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l + "\r\n")
	}
	if _, err := io.WriteString(c.conn, b.String()); err != nil {
		c.t.Fatalf("write %q: %v", b.String(), err)
	}
}

// line reads one response line, which must end in CRLF, and strips it.
func (c *rawClient) line() string {
	c.t.Helper()
	l, err := c.r.ReadString('\n')
	if err != nil {
		c.t.Fatalf("read line: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		c.t.Fatalf("line %q does not end in CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// cmd sends one command and returns the first line of its reply.
func (c *rawClient) cmd(line string) string {
	c.t.Helper()
	c.send(line)
	return c.line()
}

// multi reads the lines of a multi-line reply up to the terminating ".",
// without unstuffing them.
func (c *rawClient) multi() []string {
	c.t.Helper()
	var lines []string
	for {
		l := c.line()
		if l == "." {
			return lines
		}
		lines = append(lines, l)
	}
}

// wireBody reads the raw bytes of a multi-line reply after its status line,
// terminator included.
func (c *rawClient) wireBody() []byte {
	c.t.Helper()
	var body []byte
	for {
		l, err := c.r.ReadBytes('\n')
		if err != nil {
			c.t.Fatalf("read body: %v (so far %q)", err, append(body, l...))
		}
		body = append(body, l...)
		if string(l) == ".\r\n" {
			return body
		}
	}
}

// untilEOF reads everything up to the end of the connection and fails the
// test when the connection does not end.
func (c *rawClient) untilEOF() []byte {
	c.t.Helper()
	b, err := io.ReadAll(c.r)
	if err != nil {
		c.t.Fatalf("read until EOF: %v (got %q)", err, b)
	}
	return b
}

// expect sends a command and fails the test unless the reply's first line
// starts with want.
func (c *rawClient) expect(line, want string) string {
	c.t.Helper()
	got := c.cmd(line)
	if !strings.HasPrefix(got, want) {
		c.t.Fatalf("%s: got %q, want prefix %q", line, got, want)
	}
	return got
}

func (c *rawClient) login() {
	c.t.Helper()
	c.expect("USER "+testUser, "+OK")
	c.expect("PASS "+testPass, "+OK")
}

// loginEventually logs in on a new connection, retrying while another
// session still holds the maildrop; a dropped connection's session ends a
// moment after the client closed it.
func loginEventually(t testing.TB, s *Server) *rawClient {
	t.Helper()
	deadline := time.Now().Add(ioTimeout)
	for {
		c := dial(t, s)
		c.expect("USER "+testUser, "+OK")
		reply := c.cmd("PASS " + testPass)
		if strings.HasPrefix(reply, "+OK") {
			return c
		}
		c.conn.Close()
		if !strings.HasPrefix(reply, "-ERR [IN-USE]") || time.Now().After(deadline) {
			t.Fatalf("PASS: got %q, want +OK", reply)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// apopDigest computes the APOP digest for the timestamp in a greeting.
func apopDigest(t testing.TB, greeting, secret string) string {
	t.Helper()
	start, end := strings.IndexByte(greeting, '<'), strings.IndexByte(greeting, '>')
	if start < 0 || end < start {
		t.Fatalf("greeting %q has no APOP timestamp", greeting)
	}
	sum := md5.Sum([]byte(greeting[start:end+1] + secret))
	return hex.EncodeToString(sum[:])
}

// uidls lists the UIDLs of the server's maildrop.
func uidls(s *Server) []string {
	var ids []string
	for _, m := range s.Messages() {
		ids = append(ids, m.UIDL)
	}
	return ids
}

// unstuff decodes a wire body as a client that ends lines at every LF
// would, returning the message bytes.
func unstuff(wire []byte) ([]byte, error) {
	var out []byte
	for len(wire) > 0 {
		end := bytes.IndexByte(wire, '\n')
		if end < 0 {
			return nil, errors.New("body ends without a terminator")
		}
		line := wire[:end+1]
		wire = wire[end+1:]
		if string(line) == ".\r\n" {
			if len(wire) != 0 {
				return nil, errors.New("bytes after the terminator")
			}
			return out, nil
		}
		out = append(out, bytes.TrimPrefix(line, []byte("."))...)
	}
	return nil, errors.New("body ends without a terminator")
}

// testTLSConfigs returns a server configuration with a fresh certificate
// for 127.0.0.1 and a client configuration that trusts it.
func testTLSConfigs(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	ca := testcert.New(t)
	return ca.ServerConfig(t, testcert.Leaf{}), ca.ClientConfig("127.0.0.1")
}

// isTimeout reports whether err is a deadline expiry.
func isTimeout(err error) bool {
	return errors.Is(err, os.ErrDeadlineExceeded)
}
