// Package delayproxy is a TCP proxy on loopback that adds a fixed one-way
// delay to every chunk in each direction, for benchmarks on kernels without
// tc netem. It preserves order and does not limit throughput: each chunk is
// stamped when it is read and written out at that time plus the delay, so a
// connection behaves like a link with round-trip time 2×Delay and (nearly)
// unlimited bandwidth.
package delayproxy

import (
	"net"
	"sync"
	"time"

	"github.com/pop2imap/pop2imap/internal/tcprelay"
)

// chunkSize is the most one read takes from a connection.
const chunkSize = 64 << 10

// queueChunks bounds the chunks in flight in one direction. It only has to
// cover a bandwidth-delay product: 4096 × 64 KiB = 256 MiB per direction,
// far more than a loopback link moves in 100 ms.
const queueChunks = 4096

// Proxy forwards every connection it accepts to Target.
type Proxy struct {
	Target string        // host:port to connect to, as given to Listen
	Delay  time.Duration // added to each direction

	relay *tcprelay.Relay
	clock clock
}

// clock is the time the proxy stamps chunks with and waits on; tests give
// it a fake one.
type clock interface {
	Now() time.Time
	Sleep(d time.Duration)
}

type realClock struct{}

func (realClock) Now() time.Time        { return time.Now() }
func (realClock) Sleep(d time.Duration) { time.Sleep(d) }

// Listen starts a proxy on 127.0.0.1 with a free port, forwarding to target
// with the given one-way delay.
func Listen(target string, delay time.Duration) (*Proxy, error) {
	return listen(target, delay, realClock{})
}

func listen(target string, delay time.Duration, c clock) (*Proxy, error) {
	p := &Proxy{Target: target, Delay: delay, clock: c}
	r, err := tcprelay.Listen(target, p.handle)
	if err != nil {
		return nil, err
	}
	p.relay = r
	return p, nil
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.relay.Addr() }

// Close stops accepting, cuts every open connection and waits for the
// forwarding goroutines to end.
func (p *Proxy) Close() error { return p.relay.Close() }

// handle forwards one connection in both directions until both have ended.
func (p *Proxy) handle(client, server net.Conn) {
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); p.pump(server, client) }()
	go func() { defer wg.Done(); p.pump(client, server) }()
	wg.Wait()
}

type chunk struct {
	data []byte
	due  time.Time
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// pump copies src to dst, each chunk delayed by p.Delay from when it was
// read. At EOF it half-closes dst once everything before has been delivered;
// on an error it closes both ends.
func (p *Proxy) pump(dst, src net.Conn) {
	q := make(chan chunk, queueChunks)
	done := make(chan struct{})
	go func() {
		defer close(done)
		broken := false
		for c := range q {
			if !broken {
				if wait := c.due.Sub(p.clock.Now()); wait > 0 {
					p.clock.Sleep(wait)
				}
				if _, err := dst.Write(c.data); err != nil {
					broken = true
					src.Close()
				}
			}
			b := c.data[:cap(c.data)]
			bufPool.Put(&b)
		}
		if !broken {
			if tc, ok := dst.(*net.TCPConn); ok {
				tc.CloseWrite()
				return
			}
		}
		dst.Close()
	}()
	for {
		bp := bufPool.Get().(*[]byte)
		n, err := src.Read(*bp)
		if n > 0 {
			q <- chunk{data: (*bp)[:n], due: p.clock.Now().Add(p.Delay)}
		} else {
			bufPool.Put(bp)
		}
		if err != nil {
			// EOF, reset or Close: what was read is still delivered.
			break
		}
	}
	close(q)
	<-done
}
