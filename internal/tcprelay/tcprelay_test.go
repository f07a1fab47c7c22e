package tcprelay

import (
	"bytes"
	"crypto/rand"
	"errors"
	"io"
	"net"
	"sync/atomic"
	"testing"

	"github.com/pop2imap/pop2imap/internal/testnet"
)

// TestRelaysBothWays sends data through the relay to an echo server and
// checks it all comes back, in order, followed by the end of the stream.
func TestRelaysBothWays(t *testing.T) {
	r, err := Listen(testnet.Echo(t), Pipe)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if host, _, _ := net.SplitHostPort(r.Addr()); host != "127.0.0.1" {
		t.Errorf("Addr %s, want one on 127.0.0.1", r.Addr())
	}
	for i := 0; i < 3; i++ {
		c, err := net.Dial("tcp", r.Addr())
		if err != nil {
			t.Fatal(err)
		}
		data := make([]byte, 1<<20)
		rand.Read(data)
		go func() {
			c.Write(data)
			c.(*net.TCPConn).CloseWrite()
		}()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatalf("connection %d: got %d bytes back, want the %d sent", i, len(got), len(data))
		}
	}
}

// TestClosesAfterHandle checks that both connections are closed once the
// handler returns, and that a connection whose target cannot be dialed is
// dropped without calling the handler.
func TestClosesAfterHandle(t *testing.T) {
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close()

	for _, tt := range []struct {
		name   string
		target string
		called bool
	}{
		{"handler returns", testnet.Echo(t), true},
		{"dial fails", deadAddr, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var called atomic.Bool
			var server net.Conn
			r, err := Listen(tt.target, func(_, s net.Conn) {
				called.Store(true)
				server = s
			})
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			c, err := net.Dial("tcp", r.Addr())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if n, err := c.Read(make([]byte, 1)); err == nil {
				t.Errorf("client read %d bytes, want the connection closed", n)
			}
			r.Close() // waits for the handler, so server is set
			if called.Load() != tt.called {
				t.Errorf("handler called: %v, want %v", called.Load(), tt.called)
			}
			if tt.called {
				if _, err := server.Write([]byte("x")); !errors.Is(err, net.ErrClosed) {
					t.Errorf("writing to the server connection after the handler returned: %v, want %v", err, net.ErrClosed)
				}
			}
		})
	}
}

// TestCloseCutsAndWaits checks that Close closes a connection a handler is
// still using and does not return before that handler has.
func TestCloseCutsAndWaits(t *testing.T) {
	started := make(chan struct{})
	cut := make(chan struct{})
	release := make(chan struct{})
	var ended atomic.Bool
	r, err := Listen(testnet.Echo(t), func(client, server net.Conn) {
		close(started)
		io.Copy(io.Discard, client) // until Close cuts it
		close(cut)
		<-release
		ended.Store(true)
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", r.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-started

	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	<-cut
	select {
	case <-closed:
		t.Fatal("Close returned while a handler was still running")
	default:
	}
	close(release)
	if err := <-closed; err != nil {
		t.Errorf("Close: %v", err)
	}
	if !ended.Load() {
		t.Error("Close returned before the handler ended")
	}
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("client read %d bytes after Close, want the connection closed", n)
	}
	if _, err := net.Dial("tcp", r.Addr()); err == nil {
		t.Error("relay still accepts after Close")
	}
}
