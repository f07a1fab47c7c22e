package pop3

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// isTimeout reports whether err is a deadline expiry, the way a caller
// would check it.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout() && errors.Is(err, os.ErrDeadlineExceeded)
}

// TestDeadlines proves that a server that goes silent makes the command
// fail with a timeout error instead of hanging.
func TestDeadlines(t *testing.T) {
	tests := []struct {
		name   string
		server func(s *fakeServer, stall <-chan struct{})
		run    func(c *Client) error
	}{
		{
			name: "reply never comes",
			server: func(s *fakeServer, stall <-chan struct{}) {
				s.send("+OK ready\r\n")
				s.expect("NOOP\r\n")
				<-stall
			},
			run: func(c *Client) error { return c.Noop() },
		},
		{
			name: "body stops midway",
			server: func(s *fakeServer, stall <-chan struct{}) {
				s.send("+OK ready\r\n")
				s.expect("RETR 1\r\n")
				s.send("+OK\r\nSubject: half a mess")
				<-stall
			},
			run: func(c *Client) error {
				r, err := c.Retr(1)
				if err != nil {
					return err
				}
				_, err = io.ReadAll(r)
				return err
			},
		},
		{
			name: "listing stops midway",
			server: func(s *fakeServer, stall <-chan struct{}) {
				s.send("+OK ready\r\n")
				s.expect("UIDL\r\n")
				s.send("+OK\r\n1 abc\r\n")
				<-stall
			},
			run: func(c *Client) error { _, err := c.Uidl(); return err },
		},
		{
			name: "pipelined reply never comes",
			server: func(s *fakeServer, stall <-chan struct{}) {
				s.send("+OK ready\r\n")
				s.expect("CAPA\r\n")
				s.send("+OK\r\nPIPELINING\r\n.\r\n")
				s.expect("DELE 1\r\n")
				s.expect("DELE 2\r\n")
				s.send("+OK\r\n")
				<-stall
			},
			run: func(c *Client) error { return c.DeleAll([]int{1, 2}, 4) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			stall := make(chan struct{})
			defer close(stall)
			conn := startServer(t, func(s *fakeServer) { tc.server(s, stall) })
			c, err := NewClient(conn, &Options{Timeout: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			err = tc.run(c)
			if !isTimeout(err) {
				t.Fatalf("error = %v, want a timeout", err)
			}
			if !strings.HasPrefix(err.Error(), "pop3: ") {
				t.Errorf("error %q lacks the pop3: prefix", err)
			}
		})
	}
}

// TestGreetingDeadline proves that a server that never greets fails
// NewClient with a timeout, and the connection is closed.
func TestGreetingDeadline(t *testing.T) {
	closed := make(chan bool, 1)
	conn := startServer(t, func(s *fakeServer) {
		_, ok := <-s.lines
		closed <- !ok
	})
	_, err := NewClient(conn, &Options{Timeout: 50 * time.Millisecond})
	if !isTimeout(err) {
		t.Fatalf("error = %v, want a timeout", err)
	}
	if !<-closed {
		t.Error("connection not closed")
	}
}

// TestDeadlineExtendedWhileBodyFlows proves that a body slower in total
// than Timeout still arrives, because data keeps coming.
func TestDeadlineExtendedWhileBodyFlows(t *testing.T) {
	const timeout = 300 * time.Millisecond
	const chunks = 20 // 20 x 50ms: well past the timeout in total
	conn := startServer(t, func(s *fakeServer) {
		s.send("+OK ready\r\n")
		s.expect("RETR 1\r\n")
		s.send("+OK\r\n")
		for i := 0; i < chunks; i++ {
			time.Sleep(timeout / 6)
			s.send("line\r\n")
		}
		s.send(".\r\n")
		s.expectClose()
	})
	c, err := NewClient(conn, &Options{Timeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r, err := c.Retr(1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil || len(b) != chunks*len("line\r\n") {
		t.Fatalf("body = %d bytes, %v", len(b), err)
	}
}

// TestLineBound proves that one response line cannot grow past
// MaxLineLength, even when it never ends.
func TestLineBound(t *testing.T) {
	t.Run("endless line", func(t *testing.T) {
		conn := &streamConn{r: io.MultiReader(strings.NewReader("+OK "), &repeatReader{b: 'A', n: 1 << 62})}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		_, err := NewClient(conn, nil)
		runtime.ReadMemStats(&after)
		var perr *ProtocolError
		if !errors.As(err, &perr) {
			t.Fatalf("error = %v, want *ProtocolError", err)
		}
		if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
			t.Errorf("an endless line made the client allocate %d bytes", grew)
		}
	})
	for _, tc := range []struct {
		name string
		max  int
		line string
		ok   bool
	}{
		{"at the limit", 100, "+OK " + strings.Repeat("x", 96), true},
		{"one over", 100, "+OK " + strings.Repeat("x", 97), false},
		{"over a buffer long", 100 << 10, "+OK " + strings.Repeat("x", 100<<10), false},
		{"long but allowed", 200 << 10, "+OK " + strings.Repeat("x", 150<<10), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewClient(&streamConn{r: strings.NewReader(tc.line + "\r\n")}, &Options{MaxLineLength: tc.max})
			var perr *ProtocolError
			if tc.ok && err != nil || !tc.ok && !errors.As(err, &perr) {
				t.Fatalf("error = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestListingBound proves that a multi-line reply cannot grow without end.
func TestListingBound(t *testing.T) {
	defer func(n int) { maxListLines = n }(maxListLines)
	maxListLines = 5
	tests := []struct {
		name  string
		lines int
		ok    bool
	}{
		{"at the bound", 5, true},
		{"over the bound", 6, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			b.WriteString("+OK\r\n+OK\r\n")
			for i := 1; i <= tc.lines; i++ {
				b.WriteString("1 uid\r\n")
			}
			b.WriteString(".\r\n")
			c, err := NewClient(&streamConn{r: strings.NewReader(b.String())}, nil)
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.Uidl()
			var perr *ProtocolError
			if tc.ok && err != nil || !tc.ok && !errors.As(err, &perr) {
				t.Fatalf("error = %v, want ok=%v", err, tc.ok)
			}
		})
	}
	t.Run("endless CAPA", func(t *testing.T) {
		conn := &streamConn{r: io.MultiReader(strings.NewReader("+OK\r\n+OK\r\n"), &repeatReader{b: '\n', n: 1 << 62})}
		c, err := NewClient(conn, nil)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Capabilities()
		var perr *ProtocolError
		if !errors.As(err, &perr) {
			t.Fatalf("error = %v, want *ProtocolError", err)
		}
	})
}

// TestListingBoundedByStat: after STAT, a listing longer than the message
// count is refused as garbage instead of growing without end.
func TestListingBoundedByStat(t *testing.T) {
	conn := startServer(t, func(s *fakeServer) {
		s.send("+OK ready\r\n")
		s.expect("STAT\r\n")
		s.send("+OK 2 200\r\n")
		s.expect("UIDL\r\n")
		s.send("+OK\r\n1 a\r\n2 b\r\n3 c\r\n4 d\r\n.\r\n")
		s.expectClose()
	})
	c, err := NewClient(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, _, err := c.Stat(); err != nil || n != 2 {
		t.Fatalf("Stat = %d, %v", n, err)
	}
	_, err = c.Uidl()
	var perr *ProtocolError
	if !errors.As(err, &perr) {
		t.Fatalf("Uidl of 4 lines after STAT said 2: %v, want a ProtocolError", err)
	}
}

// uidLines streams "n uid\r\n" for n = 1, 2, ... without end, counting the
// bytes read.
type uidLines struct {
	n    int
	uid  string
	read int64
	pend []byte
}

func (r *uidLines) Read(p []byte) (int, error) {
	for len(r.pend) < len(p) {
		r.n++
		r.pend = append(r.pend, strconv.Itoa(r.n)+" "+r.uid+"\r\n"...)
	}
	n := copy(p, r.pend)
	r.pend = r.pend[n:]
	r.read += int64(n)
	return n, nil
}

// TestListingBytesBound: a STAT that claims ten million messages followed by
// an endless UIDL of legal lines is cut off after maxListBytes, not after
// what STAT allows.
func TestListingBytesBound(t *testing.T) {
	src := &uidLines{uid: strings.Repeat("u", MaxUIDLength)}
	conn := &streamConn{r: io.MultiReader(strings.NewReader("+OK\r\n+OK 10000000 0\r\n+OK\r\n"), src), w: io.Discard}
	c, err := NewClient(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n, _, err := c.Stat(); err != nil || n != 10_000_000 {
		t.Fatalf("Stat = %d, %v", n, err)
	}
	lines := 0
	err = c.ScanUidl(func(UIDInfo) error { lines++; return nil })
	var perr *ProtocolError
	if !errors.As(err, &perr) {
		t.Fatalf("error = %v, want a *ProtocolError", err)
	}
	if limit := maxListBytes + readBufferSize + 100; src.read > limit || maxListBytes > 64<<20 {
		t.Fatalf("read %d bytes of the listing (bound %d); want at most 64 MiB", src.read, maxListBytes)
	}
	t.Logf("%d lines, %d bytes read", lines, src.read)
}

// TestUIDLength: a unique-id of more than 70 bytes (RFC 1939 §7) is a
// *UIDError from every form of UIDL; after one in a listing the session is
// dropped rather than drained, as the listing may never end.
func TestUIDLength(t *testing.T) {
	ok, long := strings.Repeat("a", MaxUIDLength), strings.Repeat("b", MaxUIDLength+1)
	conn := startServer(t, func(s *fakeServer) {
		s.send("+OK ready\r\n")
		s.expect("UIDL\r\n")
		s.send("+OK\r\n1 " + ok + "\r\n.\r\n")
		s.expect("UIDL 2\r\n")
		s.send("+OK 2 " + long + "\r\n")
		s.expect("UIDL\r\n")
		s.send("+OK\r\n1 " + ok + "\r\n2 " + long + "\r\n3 c\r\n")
		s.expectClose()
	})
	c, err := NewClient(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	us, err := c.Uidl()
	if err != nil || len(us) != 1 || us[0].UID != ok {
		t.Fatalf("a 70-byte unique-id: %v, %v", us, err)
	}
	var uerr *UIDError
	if _, err := c.UidlOne(2); !errors.As(err, &uerr) {
		t.Fatalf("UidlOne: %v, want a *UIDError", err)
	}
	_, err = c.Uidl()
	if !errors.As(err, &uerr) || uerr.Number != 2 || uerr.Length != MaxUIDLength+1 {
		t.Fatalf("Uidl: %v, want a *UIDError for message 2", err)
	}
	if err := c.Noop(); err == nil {
		t.Fatal("the session is still used after a listing with an over-long unique-id")
	}
}

// TestStopListing: a callback error that matches ErrStopListing drops the
// session at once; any other error leaves the rest to be read, and the
// session in step.
func TestStopListing(t *testing.T) {
	for _, stop := range []bool{false, true} {
		conn := startServer(t, func(s *fakeServer) {
			s.send("+OK ready\r\n")
			s.expect("UIDL\r\n")
			s.send("+OK\r\n1 a\r\n2 b\r\n3 c\r\n.\r\n")
			if !stop {
				s.expect("NOOP\r\n")
				s.send("+OK\r\n")
			}
			s.expectClose()
		})
		c, err := NewClient(conn, nil)
		if err != nil {
			t.Fatal(err)
		}
		cause := errors.New("too much")
		if stop {
			cause = fmt.Errorf("%w: %w", cause, ErrStopListing)
		}
		calls := 0
		err = c.ScanUidl(func(UIDInfo) error { calls++; return cause })
		if !errors.Is(err, cause) || calls != 1 {
			t.Fatalf("stop %v: %v after %d calls; want the callback's error after 1", stop, err, calls)
		}
		if err := c.Noop(); (err == nil) == stop {
			t.Errorf("stop %v: NOOP afterwards: %v", stop, err)
		}
		c.Close()
	}
}
