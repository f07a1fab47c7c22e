package delayproxy

import (
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/testnet"
)

// TestRoundTripDelay proves that a request and its reply take at least
// twice the one-way delay. How much longer they take depends on the load of
// the machine; TestDelayIsExact checks that the proxy adds nothing more.
func TestRoundTripDelay(t *testing.T) {
	for _, delay := range []time.Duration{0, 10 * time.Millisecond, 25 * time.Millisecond} {
		p, err := Listen(testnet.Echo(t), delay)
		if err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 4)
		start := time.Now()
		for i := 0; i < 3; i++ {
			c.Write([]byte("ping"))
			if _, err := io.ReadFull(c, buf); err != nil {
				t.Fatal(err)
			}
		}
		rtt := time.Since(start) / 3
		if rtt < 2*delay {
			t.Errorf("delay %v: round trip %v, want at least %v", delay, rtt, 2*delay)
		}
		c.Close()
		p.Close()
	}
}

// TestBulkIsNotThrottled sends 64 MiB across a 25 ms proxy in both
// directions and checks they arrive byte for byte and in order; it logs the
// time, which is far less than the 25 s a per-chunk delay would take.
func TestBulkIsNotThrottled(t *testing.T) {
	p, err := Listen(testnet.Echo(t), 25*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	data := make([]byte, 64<<20)
	rand.Read(data)
	start := time.Now()
	go func() {
		c.Write(data)
		c.(*net.TCPConn).CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, data) {
		t.Fatalf("echoed %d bytes, not the %d sent", len(got), len(data))
	}
	// How fast is for the benchmark to measure; a test must not depend on
	// the machine's speed, so this only reports it.
	t.Logf("64 MiB through a 25 ms proxy in %v (about 25 s if delayed per chunk)", time.Since(start))
}

// TestCloseCutsConnections proves that Close returns with connections open.
func TestCloseCutsConnections(t *testing.T) {
	p, err := Listen(testnet.Echo(t), time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.Write([]byte("x"))
	io.ReadFull(c, make([]byte, 1))
	done := make(chan struct{})
	go func() { p.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close hung with a connection open")
	}
}

// fakeClock stands still until the test advances it. Sleep reports how long
// it was asked to wait, then blocks until the clock has moved that far.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	moved  chan struct{} // closed and replaced at every advance
	sleeps chan time.Duration
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Unix(1e9, 0), moved: make(chan struct{}), sleeps: make(chan time.Duration, 16)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(d time.Duration) {
	c.mu.Lock()
	until := c.now.Add(d)
	c.mu.Unlock()
	c.sleeps <- d
	for {
		c.mu.Lock()
		now, moved := c.now, c.moved
		c.mu.Unlock()
		if !now.Before(until) {
			return
		}
		<-moved
	}
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	close(c.moved)
	c.moved = make(chan struct{})
	c.mu.Unlock()
}

// TestDelayIsExact runs the proxy on a fake clock: each direction waits
// exactly the delay from when a chunk was read, and nothing is delivered
// before the clock has moved that far. No wall-clock bound is involved, so
// a loaded machine cannot fail it.
func TestDelayIsExact(t *testing.T) {
	const delay = 25 * time.Millisecond
	clk := newFakeClock()
	p, err := listen(testnet.Echo(t), delay, clk)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	got := make(chan []byte, 1)
	go func() {
		buf := make([]byte, 4)
		io.ReadFull(c, buf)
		got <- buf
	}()
	c.Write([]byte("ping"))
	for _, leg := range []string{"to the server", "back to the client"} {
		if d := <-clk.sleeps; d != delay {
			t.Fatalf("%s: the proxy waits %v, want exactly %v", leg, d, delay)
		}
		select {
		case b := <-got:
			t.Fatalf("%s: %q delivered before the delay passed", leg, b)
		default:
		}
		clk.advance(delay - time.Nanosecond)
		clk.advance(time.Nanosecond)
	}
	if b := <-got; string(b) != "ping" {
		t.Fatalf("echoed %q", b)
	}
}
