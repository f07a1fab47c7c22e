// Package faultproxy is a TCP proxy on loopback that breaks connections on
// purpose, for tests that prove a client survives a hostile network.
//
// Placed between a client and a server, it forwards bytes unchanged in both
// directions until a Fault fires. A fault fires at a chosen point in one
// direction: after a number of bytes, after a number of lines, or once the
// other direction has carried a given string (an IMAP "APPEND", say). What it
// then does is one of:
//
//   - Cut: deliver exactly the bytes before the point, then close both sides.
//   - Stall: hold the bytes from the point on for a while and then deliver
//     them late, or swallow them for good, keeping both sides open: a peer
//     that hangs.
//   - Delay: deliver every later chunk late.
//
// HangAfterGreeting is the server that greets and then never answers.
//
// Faults are one-shot per connection, or, with Global, once over all the
// connections the proxy carries: a byte offset then counts every byte that
// went that way since SetFaults, which is how a test cuts "a run" at a
// random byte whatever connections the client opens.
package faultproxy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pop2imap/pop2imap/internal/tcprelay"
)

// Direction is one way through the proxy.
type Direction int

const (
	// Upstream is from the client to the server.
	Upstream Direction = iota + 1
	// Downstream is from the server to the client.
	Downstream
)

func (d Direction) String() string {
	switch d {
	case Upstream:
		return "client->server"
	case Downstream:
		return "server->client"
	}
	return "unknown direction"
}

func (d Direction) other() Direction {
	if d == Upstream {
		return Downstream
	}
	return Upstream
}

// Action is what a fault does once it fires.
type Action int

const (
	// Cut closes both sides of the connection. The bytes before the point
	// are delivered, none after it.
	Cut Action = iota + 1
	// Stall stops forwarding in the fault's direction, keeping both sides
	// open. With a Duration it forwards again after that long (the bytes
	// that arrived meanwhile are delivered late, not dropped); without one
	// it drops everything from then on.
	Stall
	// Delay holds every chunk from the point on for Duration before
	// delivering it.
	Delay
)

func (a Action) String() string {
	switch a {
	case Cut:
		return "cut"
	case Stall:
		return "stall"
	case Delay:
		return "delay"
	}
	return "unknown action"
}

// Fault says where, in one direction, the proxy misbehaves, and how.
//
// It fires at the first byte after the trigger: after Offset bytes in Dir,
// or after Lines line feeds in Dir when Lines is positive, or, when
// PeerSends is set, at the first byte in Dir after the other direction has
// carried that string (and Offset is then counted from that moment).
type Fault struct {
	// Conn selects the connection: 0 for every one, n for the n-th accepted
	// since the faults were set (1-based).
	Conn int
	// Dir is the direction that is counted and broken.
	Dir Direction
	// Offset is the number of bytes delivered in Dir before the fault fires.
	Offset int64
	// Global counts Offset over all the proxy's connections together, and
	// makes the fault fire once in all, on whichever connection carries the
	// byte at that offset. Lines and PeerSends are per connection.
	Global bool
	// Lines, when positive, makes the fault fire after that many LF bytes
	// in Dir (Offset is then ignored): Lines 1 passes one greeting.
	Lines int
	// PeerSends, when set, arms the fault only once the opposite direction
	// has carried this string.
	PeerSends string
	// Action is what happens when the fault fires.
	Action Action
	// Duration is how long Stall pauses (0: for good) or Delay holds each
	// chunk.
	Duration time.Duration
}

// HangAfterGreeting returns the faults of a server that sends its greeting
// line and then falls silent: the greeting reaches the client, nothing the
// client sends reaches the server, and no other reply ever comes back.
func HangAfterGreeting() []Fault {
	return []Fault{
		{Dir: Downstream, Lines: 1, Action: Stall},
		{Dir: Upstream, Action: Stall},
	}
}

// chunkSize is the most one read takes from a connection.
const chunkSize = 32 << 10

// Proxy forwards every connection it accepts to its target.
type Proxy struct {
	relay *tcprelay.Relay
	done  chan struct{} // closed by Close, to end stalls and delays

	mu       sync.Mutex
	faults   []Fault
	globals  []*globalState // parallel to faults; nil for per-connection faults
	accepted int            // connections accepted since SetFaults
	closed   bool
	fired    []string
	bytes    [3]int64 // by Direction, over the proxy's life
}

// globalState counts one Global fault's bytes over all connections.
type globalState struct {
	seen  int64
	fired bool
}

// Listen starts a proxy on 127.0.0.1 with a free port, forwarding to target
// with the given faults.
func Listen(target string, faults ...Fault) (*Proxy, error) {
	p := &Proxy{done: make(chan struct{})}
	p.SetFaults(faults...)
	r, err := tcprelay.Listen(target, p.handle)
	if err != nil {
		return nil, err
	}
	p.relay = r
	return p, nil
}

// Addr is the address clients connect to.
func (p *Proxy) Addr() string { return p.relay.Addr() }

// SetFaults replaces the faults. They apply to connections accepted from now
// on; connections already open keep theirs. Conn numbers and Global offsets
// count from this call. SetFaults() with no faults makes the proxy plain.
func (p *Proxy) SetFaults(faults ...Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = append([]Fault(nil), faults...)
	p.globals = make([]*globalState, len(faults))
	for i, f := range faults {
		if f.Global {
			p.globals[i] = &globalState{}
		}
	}
	p.accepted = 0
}

// Fired returns a description of every fault that has fired, in order.
func (p *Proxy) Fired() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.fired...)
}

// Bytes returns how many bytes the proxy has delivered in direction d over
// its whole life.
func (p *Proxy) Bytes(d Direction) int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.bytes[d]
}

// Close stops accepting, closes every open connection and waits for the
// forwarding goroutines to end.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.done)
	}
	p.mu.Unlock()
	return p.relay.Close()
}

// conn is one proxied connection and the faults that apply to it.
type conn struct {
	p      *Proxy
	n      int
	client net.Conn
	server net.Conn
	faults []*connFault

	closeOnce sync.Once
	cutOnce   sync.Once
	isCut     atomic.Bool

	mu       sync.Mutex
	peerSeen [3][]string // strings already carried, by direction
	tails    [3][]byte   // the last bytes carried, by direction, to match across chunks
}

// connFault is one fault's state on one connection.
type connFault struct {
	Fault
	global *globalState
	seen   int64 // bytes in Dir counted so far (not for Global)
	lines  int
	armed  bool // PeerSends seen (always true without PeerSends)
	fired  bool
}

// handle forwards one connection, numbering it and giving it the faults
// that apply to it.
func (p *Proxy) handle(client, server net.Conn) {
	c := &conn{p: p, client: client, server: server}
	p.mu.Lock()
	p.accepted++
	c.n = p.accepted
	for i, f := range p.faults {
		if f.Conn != 0 && f.Conn != c.n {
			continue
		}
		c.faults = append(c.faults, &connFault{Fault: f, global: p.globals[i], armed: f.PeerSends == ""})
	}
	p.mu.Unlock()

	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); c.pump(Upstream, server, client) }()
	go func() { defer wg.Done(); c.pump(Downstream, client, server) }()
	wg.Wait()
}

// closeAll closes both sides at once.
func (c *conn) closeAll() {
	c.closeOnce.Do(func() {
		c.client.Close()
		c.server.Close()
	})
}

// cut ends the connection at a fault in direction d so that the receiver
// sees exactly the bytes delivered so far and then the end of the stream:
// the receiver gets a FIN (a full close could turn into a reset that throws
// away bytes it has not read yet), the sender is closed, and whatever the
// receiver sends from now on is read and dropped until it closes too.
func (c *conn) cut(d Direction) {
	c.cutOnce.Do(func() {
		c.isCut.Store(true)
		recv, send := c.client, c.server
		if d == Upstream {
			recv, send = c.server, c.client
		}
		if tc, ok := recv.(*net.TCPConn); !ok || tc.CloseWrite() != nil {
			recv.Close()
		}
		send.Close()
		time.AfterFunc(cutLinger, c.closeAll)
	})
}

// cutLinger bounds how long a cut connection's receiver may keep its side
// open before the proxy closes it.
const cutLinger = 3 * time.Second

// pump copies src to dst in direction d, applying the faults.
func (c *conn) pump(d Direction, dst, src net.Conn) {
	buf := make([]byte, chunkSize)
	var (
		stalledUntil time.Time // zero: not stalled
		forever      bool
		delay        time.Duration
	)
	for {
		n, err := src.Read(buf)
		data := buf[:n]
		if c.isCut.Load() {
			data = nil // the other direction was cut: drop
		}
		for len(data) > 0 {
			if forever {
				data = nil // swallowed
				break
			}
			if !stalledUntil.IsZero() {
				if !c.sleep(time.Until(stalledUntil)) {
					c.closeAll()
					return
				}
				stalledUntil = time.Time{}
			}
			pos, f := c.nextFire(d, data)
			// Deliver the bytes before the point.
			if pos > 0 {
				if delay > 0 && !c.sleep(delay) {
					c.closeAll()
					return
				}
				if !c.deliver(d, dst, data[:pos]) {
					return
				}
				data = data[pos:]
			}
			if f == nil {
				break
			}
			switch f.Action {
			case Cut:
				c.cut(d)
				return
			case Stall:
				if f.Duration <= 0 {
					forever = true
				} else {
					stalledUntil = time.Now().Add(f.Duration)
				}
			case Delay:
				delay = f.Duration
			}
		}
		if err == nil {
			continue
		}
		switch {
		case c.isCut.Load():
			c.closeAll()
		case forever:
			// A hung peer does not pass the end on either.
			c.sleep(-1)
			c.closeAll()
		case errors.Is(err, io.EOF):
			if tc, ok := dst.(*net.TCPConn); ok && tc.CloseWrite() == nil {
				return
			}
			c.closeAll()
		default:
			c.closeAll()
		}
		return
	}
}

// sleep waits d (for good when d < 0) unless the proxy closes first; it
// reports whether the whole wait passed.
func (c *conn) sleep(d time.Duration) bool {
	if d < 0 {
		<-c.p.done
		return false
	}
	if d == 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-c.p.done:
		return false
	}
}

func (c *conn) deliver(d Direction, dst net.Conn, b []byte) bool {
	c.notePeer(d, b)
	_, err := dst.Write(b)
	c.p.mu.Lock()
	c.p.bytes[d] += int64(len(b))
	c.p.mu.Unlock()
	if err != nil {
		if !c.isCut.Load() {
			c.closeAll()
		}
		return false
	}
	return true
}

// notePeer records that direction d carried b, arming the faults of the
// other direction that wait for a string. It runs before the bytes are
// written, so the other side cannot answer them before the fault is armed.
func (c *conn) notePeer(d Direction, b []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	tail := append(c.tails[d], b...)
	for _, f := range c.faults {
		if f.armed || f.Dir != d.other() {
			continue
		}
		if bytes.Contains(tail, []byte(f.PeerSends)) {
			f.armed = true
		}
	}
	const keep = 256
	if len(tail) > keep {
		tail = append([]byte(nil), tail[len(tail)-keep:]...)
	}
	c.tails[d] = tail
}

// nextFire returns how many bytes of data may pass before the first fault
// of direction d fires, and that fault (nil: all of data may pass). It
// counts the bytes that pass.
func (c *conn) nextFire(d Direction, data []byte) (int, *connFault) {
	c.mu.Lock()
	defer c.mu.Unlock()
	best, bestPos := (*connFault)(nil), len(data)
	for _, f := range c.faults {
		if f.Dir != d || f.fired || !f.armed {
			continue
		}
		pos := -1
		switch {
		case f.Lines > 0:
			need := f.Lines - f.lines
			if need <= 0 {
				pos = 0
				break
			}
			for i, b := range data {
				if b == '\n' {
					if need--; need == 0 {
						pos = i + 1
						break
					}
				}
			}
		case f.global != nil:
			c.p.mu.Lock()
			if !f.global.fired {
				pos = int(max(0, f.Offset-f.global.seen))
			}
			c.p.mu.Unlock()
		default:
			pos = int(max(0, f.Offset-f.seen))
		}
		// A fault fires before a byte: at the end of data it waits for
		// the next chunk.
		if pos >= 0 && pos < bestPos {
			best, bestPos = f, pos
		}
	}
	// Count what passes, for every fault of this direction.
	for _, f := range c.faults {
		if f.Dir != d || f.fired || !f.armed {
			continue
		}
		passed := data[:bestPos]
		f.lines += bytes.Count(passed, []byte{'\n'})
		if f.global != nil {
			c.p.mu.Lock()
			f.global.seen += int64(len(passed))
			c.p.mu.Unlock()
		} else {
			f.seen += int64(len(passed))
		}
	}
	if best != nil {
		best.fired = true
		c.p.mu.Lock()
		if best.global != nil {
			if best.global.fired {
				best = nil // another connection got there first
			} else {
				best.global.fired = true
			}
		}
		if best != nil {
			c.p.fired = append(c.p.fired, describe(c.n, best))
		}
		c.p.mu.Unlock()
		if best == nil {
			return bestPos, nil
		}
	}
	return bestPos, best
}

func describe(n int, f *connFault) string {
	where := fmt.Sprintf("after %d bytes", f.Offset)
	switch {
	case f.Lines > 0:
		where = fmt.Sprintf("after %d lines", f.Lines)
	case f.Global:
		where = fmt.Sprintf("after %d bytes over all connections", f.Offset)
	}
	if f.PeerSends != "" {
		where += fmt.Sprintf(" once the peer sent %q", f.PeerSends)
	}
	s := fmt.Sprintf("connection %d: %s %s %s", n, f.Action, f.Dir, where)
	if f.Duration > 0 {
		s += fmt.Sprintf(" for %v", f.Duration)
	}
	return s
}
