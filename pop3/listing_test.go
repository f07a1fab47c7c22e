package pop3

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// listingOf runs Listing and returns what the callbacks saw, as text.
func listingOf(c *Client) (string, error) {
	var b strings.Builder
	err := c.Listing(
		func(n int, size int64) error { fmt.Fprintf(&b, "stat %d %d;", n, size); return nil },
		func(u UIDInfo) error { fmt.Fprintf(&b, "uidl %d %s;", u.Number, u.UID); return nil },
		func(m MessageInfo) error { fmt.Fprintf(&b, "list %d %d;", m.Number, m.Size); return nil })
	return b.String(), err
}

// TestListingPipelined: with PIPELINING, STAT, UIDL and LIST go out before
// any reply, and the replies are read in order, STAT's count bounding the
// listings.
func TestListingPipelined(t *testing.T) {
	c := serverClient(t, nil, func(s *fakeServer) {
		s.send("+OK ready\r\n")
		s.expect("CAPA\r\n")
		s.send("+OK\r\nUIDL\r\nPIPELINING\r\n.\r\n")
		s.expect("STAT\r\n")
		s.expect("UIDL\r\n") // before any reply was sent
		s.expect("LIST\r\n")
		s.send("+OK 2 300\r\n+OK\r\n1 aaa\r\n2 bbb\r\n.\r\n+OK\r\n1 100\r\n2 200\r\n.\r\n")
		s.expect("NOOP\r\n")
		s.send("+OK\r\n")
		s.expectClose()
	})
	got, err := listingOf(c)
	if want := "stat 2 300;uidl 1 aaa;uidl 2 bbb;list 1 100;list 2 200;"; err != nil || got != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
}

// TestListingLockStep: without PIPELINING each command waits for the
// reply before it.
func TestListingLockStep(t *testing.T) {
	c := serverClient(t, nil, func(s *fakeServer) {
		s.send("+OK ready\r\n")
		s.expect("CAPA\r\n")
		s.send("+OK\r\nUIDL\r\n.\r\n")
		s.expect("STAT\r\n")
		s.expectNothing()
		s.send("+OK 1 10\r\n")
		s.expect("UIDL\r\n")
		s.expectNothing()
		s.send("+OK\r\n1 x\r\n.\r\n")
		s.expect("LIST\r\n")
		s.send("+OK\r\n1 10\r\n.\r\n")
		s.expectClose()
	})
	got, err := listingOf(c)
	if want := "stat 1 10;uidl 1 x;list 1 10;"; err != nil || got != want {
		t.Fatalf("got %q, %v; want %q", got, err, want)
	}
}

// TestListingPipelinedFailure: a -ERR to STAT with UIDL and LIST already
// sent is returned as the server's error, and the client is not used
// again, since their replies are still to come. STAT's count still bounds
// the listing that follows it.
func TestListingPipelinedFailure(t *testing.T) {
	c := serverClient(t, nil, func(s *fakeServer) {
		s.send("+OK ready\r\n")
		s.expect("CAPA\r\n")
		s.send("+OK\r\nPIPELINING\r\n.\r\n")
		s.expect("STAT\r\n")
		s.expect("UIDL\r\n")
		s.expect("LIST\r\n")
		s.send("-ERR [SYS/TEMP] try later\r\n-ERR no\r\n-ERR no\r\n")
		s.expectClose()
	})
	_, err := listingOf(c)
	var perr *Error
	if !errors.As(err, &perr) || perr.Code != "SYS/TEMP" {
		t.Fatalf("got %v, want the server's -ERR", err)
	}
	if err := c.Noop(); err == nil {
		t.Fatal("the client was used again out of step")
	}

	c = serverClient(t, nil, func(s *fakeServer) {
		s.send("+OK ready\r\n")
		s.expect("CAPA\r\n")
		s.send("+OK\r\nPIPELINING\r\n.\r\n")
		s.expect("STAT\r\n")
		s.expect("UIDL\r\n")
		s.expect("LIST\r\n")
		s.send("+OK 1 10\r\n+OK\r\n1 a\r\n2 b\r\n.\r\n")
		s.expectClose()
	})
	var perr2 *ProtocolError
	if _, err := listingOf(c); !errors.As(err, &perr2) {
		t.Fatalf("a UIDL longer than STAT's count: %v", err)
	}
}
