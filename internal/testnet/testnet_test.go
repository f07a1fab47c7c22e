package testnet

import (
	"io"
	"net"
	"testing"
	"time"
)

// TestEcho: what the client sends comes back whole, followed by EOF once
// the client half-closes; two connections are served at once.
func TestEcho(t *testing.T) {
	addr := Echo(t)
	var conns []net.Conn
	for i := 0; i < 2; i++ {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		conns = append(conns, c)
	}
	for i, c := range conns {
		msg := []byte{'a' + byte(i), '\n'}
		if _, err := c.Write(msg); err != nil {
			t.Fatal(err)
		}
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		if err != nil || string(got) != string(msg) {
			t.Errorf("connection %d: read %q, %v; want %q then EOF", i, got, err, msg)
		}
	}
}

// TestServeClosesAfterHandler: the connection closes when the handler
// returns, and the handler sees what the client wrote.
func TestServeClosesAfterHandler(t *testing.T) {
	seen := make(chan string, 1)
	addr := Serve(t, func(c net.Conn) {
		buf := make([]byte, 5)
		io.ReadFull(c, buf)
		seen <- string(buf)
		c.Write([]byte("bye"))
	})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	c.Write([]byte("hello"))
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "bye" {
		t.Errorf("read %q, %v; want \"bye\" then EOF", got, err)
	}
	if s := <-seen; s != "hello" {
		t.Errorf("handler read %q, want hello", s)
	}
}

// TestCleanupClosesOpenConnections: a handler blocked reading a connection
// the client keeps open returns when the test ends, and the client sees
// the connection close.
func TestCleanupClosesOpenConnections(t *testing.T) {
	started, returned := make(chan struct{}), make(chan struct{})
	var c net.Conn
	t.Run("server", func(t *testing.T) {
		addr := Serve(t, func(conn net.Conn) {
			defer close(returned)
			close(started)
			io.Copy(io.Discard, conn)
		})
		var err error
		if c, err = net.Dial("tcp", addr); err != nil {
			t.Fatal(err)
		}
		<-started
	})
	defer c.Close()
	select {
	case <-returned:
	default:
		t.Fatal("the handler still runs after its test ended")
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client read %v, want EOF", err)
	}
}
