package tcprelay

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
)

// Gauge counts the connections open through the relays that use its
// Handler, as the server behind them sees them, and the most that were
// ever open at once. Tests of connection caps read it.
type Gauge struct {
	open, peak atomic.Int64
}

// Open is how many connections are open now.
func (g *Gauge) Open() int64 { return g.open.Load() }

// Peak is the most connections that were ever open at once.
func (g *Gauge) Peak() int64 { return g.peak.Load() }

// Handler relays bytes both ways unchanged, passing on each EOF as a
// half-close, and counts the connection while it is open.
func (g *Gauge) Handler(client, server net.Conn) {
	n := g.open.Add(1)
	defer g.open.Add(-1)
	for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
	}
	Pipe(client, server)
}

// Pipe forwards client and server to each other until both directions
// have ended, passing on each EOF as a half-close.
func Pipe(client, server net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	half := func(dst, src net.Conn) {
		defer wg.Done()
		io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			tc.CloseWrite()
		} else {
			dst.Close()
		}
	}
	go half(server, client)
	go half(client, server)
	wg.Wait()
}
