package pop3

import (
	"errors"
	"fmt"
	"io"
	"reflect"
	"testing"
)

func retrReply(n int) string {
	return fmt.Sprintf("+OK\r\nmessage %d\r\n..stuffed\r\n.\r\n", n)
}

func wantBody(n int) string {
	return fmt.Sprintf("message %d\r\n.stuffed\r\n", n)
}

// collect is a RetrAll callback that records each message.
func collect(got map[int]string, order *[]int) func(int, io.Reader) error {
	return func(n int, body io.Reader) error {
		b, err := io.ReadAll(body)
		if err != nil {
			return err
		}
		got[n] = string(b)
		*order = append(*order, n)
		return nil
	}
}

// TestRetrAllPipelined proves that with PIPELINING the client has several
// RETR in flight (commands 2..window arrive before reply 1 is sent), never
// more than the window, and delivers every body in order.
func TestRetrAllPipelined(t *testing.T) {
	conn := startServer(t, func(s *fakeServer) {
		s.send("+OK ready\r\n")
		s.expect("CAPA\r\n")
		s.send("+OK\r\nUIDL\r\nPIPELINING\r\n.\r\n")
		s.expect("RETR 1\r\n")
		s.expect("RETR 2\r\n") // before any reply was sent
		s.expect("RETR 3\r\n")
		s.expectNothing() // window of 3 is full
		s.send(retrReply(1))
		s.send(retrReply(2))
		// Half the window is free: the next batch comes in one go.
		s.expect("RETR 4\r\n")
		s.expect("RETR 5\r\n")
		s.send(retrReply(3))
		s.send(retrReply(4))
		s.send(retrReply(5))
		s.expect("NOOP\r\n")
		s.send("+OK\r\n")
		s.expectClose()
	})
	c, err := NewClient(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := map[int]string{}
	var order []int
	if err := c.RetrAll([]int{1, 2, 3, 4, 5}, 3, collect(got, &order)); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(order, []int{1, 2, 3, 4, 5}) {
		t.Errorf("order = %v", order)
	}
	for n := 1; n <= 5; n++ {
		if got[n] != wantBody(n) {
			t.Errorf("body %d = %q, want %q", n, got[n], wantBody(n))
		}
	}
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
}

// TestRetrAllLockStep proves that without PIPELINING (or when CAPA is
// refused) each RETR waits for the previous reply, whatever the window.
func TestRetrAllLockStep(t *testing.T) {
	for _, capa := range []string{"+OK\r\nUIDL\r\nTOP\r\n.\r\n", "-ERR what?\r\n"} {
		t.Run(capa[:3], func(t *testing.T) {
			conn := startServer(t, func(s *fakeServer) {
				s.send("+OK ready\r\n")
				s.expect("CAPA\r\n")
				s.send(capa)
				for n := 1; n <= 3; n++ {
					s.expect(fmt.Sprintf("RETR %d\r\n", n))
					s.expectNothing()
					s.send(retrReply(n))
				}
				s.expectClose()
			})
			c, err := NewClient(conn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			got := map[int]string{}
			var order []int
			if err := c.RetrAll([]int{1, 2, 3}, 10, collect(got, &order)); err != nil {
				t.Fatal(err)
			}
			if len(order) != 3 || got[3] != wantBody(3) {
				t.Errorf("got %v %v", order, got)
			}
		})
	}
}

// TestRetrAllStops proves that when the loop stops early (fn fails, or one
// RETR is refused), the outstanding replies are drained and the next
// command works.
func TestRetrAllStops(t *testing.T) {
	errStop := errors.New("disk full")
	tests := []struct {
		name    string
		replies []string
		fn      func(n int, body io.Reader) error
		calls   []int
		check   func(t *testing.T, err error)
	}{
		{
			name:    "fn fails after a partial read",
			replies: []string{retrReply(1), retrReply(2), retrReply(3), retrReply(4)},
			fn: func(n int, body io.Reader) error {
				if n == 2 {
					body.Read(make([]byte, 3))
					return errStop
				}
				_, err := io.Copy(io.Discard, body)
				return err
			},
			calls: []int{1, 2},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, errStop) {
					t.Errorf("error = %v, want fn's error", err)
				}
			},
		},
		{
			name:    "RETR refused",
			replies: []string{retrReply(1), "-ERR [SYS/TEMP] busy\r\n", retrReply(3), "-ERR no such message\r\n"},
			fn: func(n int, body io.Reader) error {
				_, err := io.Copy(io.Discard, body)
				return err
			},
			calls: []int{1},
			check: func(t *testing.T, err error) {
				var perr *Error
				if !errors.As(err, &perr) || perr.Command != "RETR 2" || !perr.Temporary() {
					t.Errorf("error = %v, want temporary *Error for RETR 2", err)
				}
			},
		},
		{
			name:    "fn uses the client",
			replies: []string{retrReply(1), retrReply(2), retrReply(3), retrReply(4)},
			calls:   []int{1},
			check: func(t *testing.T, err error) {
				if !errors.Is(err, errInCallback) {
					t.Errorf("error = %v, want errInCallback", err)
				}
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conn := startServer(t, func(s *fakeServer) {
				s.send("+OK ready\r\n")
				s.expect("CAPA\r\n")
				s.send("+OK\r\nPIPELINING\r\n.\r\n")
				for n := 1; n <= 4; n++ {
					s.expect(fmt.Sprintf("RETR %d\r\n", n))
				}
				for _, r := range tc.replies {
					s.send(r)
				}
				s.expect("NOOP\r\n")
				s.send("+OK\r\n")
				s.expectClose()
			})
			c, err := NewClient(conn, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			var calls []int
			fn := tc.fn
			if fn == nil {
				fn = func(n int, body io.Reader) error { return c.Noop() }
			}
			err = c.RetrAll([]int{1, 2, 3, 4}, 4, func(n int, body io.Reader) error {
				calls = append(calls, n)
				return fn(n, body)
			})
			tc.check(t, err)
			if !reflect.DeepEqual(calls, tc.calls) {
				t.Errorf("fn called for %v, want %v", calls, tc.calls)
			}
			if err := c.Noop(); err != nil {
				t.Fatalf("NOOP after RetrAll stopped: %v", err)
			}
		})
	}
}

// TestRetrAllCut proves that a body cut off inside RetrAll is an error
// wrapping io.ErrUnexpectedEOF, and fn saw it too.
func TestRetrAllCut(t *testing.T) {
	conn := startServer(t, func(s *fakeServer) {
		s.send("+OK ready\r\n")
		s.expect("CAPA\r\n")
		s.send("+OK\r\nPIPELINING\r\n.\r\n")
		s.expect("RETR 1\r\n")
		s.expect("RETR 2\r\n")
		s.send(retrReply(1))
		s.send("+OK\r\nhalf a mess")
	})
	c, err := NewClient(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var fnErr error
	err = c.RetrAll([]int{1, 2}, 2, func(n int, body io.Reader) error {
		_, fnErr = io.Copy(io.Discard, body)
		return fnErr
	})
	if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(fnErr, io.ErrUnexpectedEOF) {
		t.Fatalf("RetrAll = %v, fn saw %v; want io.ErrUnexpectedEOF", err, fnErr)
	}
}

// TestDeleAll proves DELE pipelining, lock-step without PIPELINING, and
// that a refusal stops sending but reads what is outstanding.
func TestDeleAll(t *testing.T) {
	t.Run("pipelined", func(t *testing.T) {
		conn := startServer(t, func(s *fakeServer) {
			s.send("+OK ready\r\n")
			s.expect("CAPA\r\n")
			s.send("+OK\r\nPIPELINING\r\n.\r\n")
			for n := 1; n <= 4; n++ {
				s.expect(fmt.Sprintf("DELE %d\r\n", n))
			}
			s.expectNothing()
			for n := 1; n <= 4; n++ {
				s.send("+OK deleted\r\n")
			}
			s.expectClose()
		})
		c, err := NewClient(conn, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.DeleAll([]int{1, 2, 3, 4}, 8); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("lock-step", func(t *testing.T) {
		conn := startServer(t, func(s *fakeServer) {
			s.send("+OK ready\r\n")
			s.expect("CAPA\r\n")
			s.send("+OK\r\nUIDL\r\n.\r\n")
			for n := 1; n <= 3; n++ {
				s.expect(fmt.Sprintf("DELE %d\r\n", n))
				s.expectNothing()
				s.send("+OK\r\n")
			}
			s.expectClose()
		})
		c, err := NewClient(conn, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.DeleAll([]int{1, 2, 3}, 8); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("refused", func(t *testing.T) {
		conn := startServer(t, func(s *fakeServer) {
			s.send("+OK ready\r\n")
			s.expect("CAPA\r\n")
			s.send("+OK\r\nPIPELINING\r\n.\r\n")
			s.expect("DELE 1\r\n")
			s.expect("DELE 2\r\n")
			s.send("-ERR [SYS/PERM] cannot\r\n")
			s.send("+OK\r\n")    // the reply still outstanding is read
			s.expect("RSET\r\n") // and DELE 3 is never sent
			s.send("+OK\r\n")
			s.expectClose()
		})
		c, err := NewClient(conn, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		err = c.DeleAll([]int{1, 2, 3}, 2)
		var perr *Error
		if !errors.As(err, &perr) || perr.Command != "DELE 1" || perr.Code != "SYS/PERM" {
			t.Fatalf("DeleAll = %v, want *Error for DELE 1", err)
		}
		if err := c.Rset(); err != nil {
			t.Fatal(err)
		}
	})
}

// TestRetrAllStopSending: after the callback returns ErrStopSending no new
// RETR goes out, yet every body already requested still reaches the
// callback, and RetrAll returns nil with the connection usable.
func TestRetrAllStopSending(t *testing.T) {
	conn := startServer(t, func(s *fakeServer) {
		s.send("+OK ready\r\n")
		s.expect("CAPA\r\n")
		s.send("+OK\r\nPIPELINING\r\n.\r\n")
		s.expect("RETR 1\r\n")
		s.expect("RETR 2\r\n")
		s.expect("RETR 3\r\n")
		s.send(retrReply(1))
		s.send(retrReply(2))
		s.send(retrReply(3))
		s.expect("NOOP\r\n") // not RETR 4: sending stopped after body 1
		s.send("+OK\r\n")
		s.expectClose()
	})
	c, err := NewClient(conn, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := map[int]string{}
	var order []int
	keep := collect(got, &order)
	err = c.RetrAll([]int{1, 2, 3, 4, 5}, 3, func(n int, body io.Reader) error {
		if err := keep(n, body); err != nil {
			return err
		}
		if n == 1 {
			return ErrStopSending
		}
		return nil
	})
	if err != nil {
		t.Fatalf("RetrAll = %v, want nil", err)
	}
	if !reflect.DeepEqual(order, []int{1, 2, 3}) {
		t.Errorf("bodies delivered for %v, want [1 2 3]", order)
	}
	if err := c.Noop(); err != nil {
		t.Fatal(err)
	}
}
