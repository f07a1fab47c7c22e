// Package testnet holds the small TCP servers that tests stand up on
// loopback: a listener that hands each connection to a function, and an
// echo server. Each is closed when the test ends.
//
// The package is for tests only: the pop2imap binary must not link it.
package testnet

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Serve listens on 127.0.0.1 on a free port and runs handle for each
// connection in a goroutine of its own, closing the connection when handle
// returns. When the test ends it stops listening, closes the connections
// still open and waits for every handler to return, so handle must return
// once its connection is closed. It returns the listener's address.
func Serve(t testing.TB, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		open = map[net.Conn]bool{}
	)
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range open {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			open[conn] = true
			mu.Unlock()
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer func() {
					mu.Lock()
					delete(open, conn)
					mu.Unlock()
					conn.Close()
				}()
				handle(conn)
			}()
		}
	}()
	return ln.Addr().String()
}

// Echo starts a server that sends back every byte it reads. When the client
// half-closes, it half-closes too, so the client reads everything and then
// EOF.
func Echo(t testing.TB) string {
	t.Helper()
	return Serve(t, func(conn net.Conn) {
		io.Copy(conn, conn)
		if tc, ok := conn.(*net.TCPConn); ok {
			tc.CloseWrite()
		}
	})
}
