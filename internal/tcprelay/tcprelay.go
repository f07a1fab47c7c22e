// Package tcprelay is the skeleton of a TCP proxy on loopback: it accepts
// connections, dials a target for each one and hands both ends to a
// handler, and on Close cuts every connection still open and waits for the
// handlers to end. The test proxies delayproxy and faultproxy are built on
// it.
package tcprelay

import (
	"net"
	"sync"
	"time"
)

// dialTimeout bounds how long connecting to the target may take.
const dialTimeout = 10 * time.Second

// Relay accepts connections and relays each one to its target through a
// handler.
type Relay struct {
	target string
	handle func(client, server net.Conn)
	ln     net.Listener
	wg     sync.WaitGroup

	mu     sync.Mutex
	conns  map[net.Conn]bool
	closed bool
}

// Listen starts a relay on 127.0.0.1 with a free port. For every connection
// it accepts, it dials target and calls handle with both ends in a goroutine
// of its own; a connection whose dial fails is dropped. Both ends are closed
// when handle returns, or earlier when the relay closes.
func Listen(target string, handle func(client, server net.Conn)) (*Relay, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	r := &Relay{target: target, handle: handle, ln: ln, conns: map[net.Conn]bool{}}
	r.wg.Add(1)
	go r.serve()
	return r, nil
}

// Addr is the address clients connect to.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

// Close stops accepting, closes every open connection and waits for every
// handler to return.
func (r *Relay) Close() error {
	r.mu.Lock()
	r.closed = true
	for c := range r.conns {
		c.Close()
	}
	r.mu.Unlock()
	err := r.ln.Close()
	r.wg.Wait()
	return err
}

func (r *Relay) serve() {
	defer r.wg.Done()
	for {
		client, err := r.ln.Accept()
		if err != nil {
			return
		}
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			r.relay(client)
		}()
	}
}

// relay dials the target for client and runs the handler.
func (r *Relay) relay(client net.Conn) {
	if !r.track(client) {
		return
	}
	defer r.untrack(client)
	server, err := net.DialTimeout("tcp", r.target, dialTimeout)
	if err != nil {
		return
	}
	if !r.track(server) {
		return
	}
	defer r.untrack(server)
	r.handle(client, server)
}

// track records c as open, or closes it and reports false when the relay
// is closing.
func (r *Relay) track(c net.Conn) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		c.Close()
		return false
	}
	r.conns[c] = true
	return true
}

func (r *Relay) untrack(c net.Conn) {
	r.mu.Lock()
	delete(r.conns, c)
	r.mu.Unlock()
	c.Close()
}
