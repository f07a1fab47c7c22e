package bridge

import (
	"sync"
	"time"
)

// appendWindow decides how many APPENDs one IMAP connection has in flight.
// It adapts to the link the way TCP Vegas adapts a congestion window: the
// lowest APPEND latency seen is the link's round trip plus the server's
// time for one message, and any latency above it is messages queued at the
// server. Once a round (as many replies as the window was wide when the
// round began), it compares the round's lowest latency with that base:
//
//	queued = window × (1 − base/latency)
//
// Few queued messages (under a quarter of the window, or minQueued) means
// the link, not the server, is the limit, so a window that was full grows:
// doubling at first, then by one a round. Over half the window queued (or
// maxQueued) means the server has slowed down, and the window shrinks by a
// quarter. Unlike TCP's, a queue here costs little: the server works
// through one connection's commands one at a time whatever their number,
// so the thresholds leave room for the jitter of a busy server rather than
// keep the queue minimal. On a 50 ms link a fast server soon has dozens of
// messages in flight; at 0 ms, where they would only wait at the server,
// the window usually stays small. The round's lowest latency is robust to a
// large message's slow reply, but a round in which the queue ran dry reads
// as no queue at all and lets a server-bound window grow; that costs
// memory, which MemoryBudget caps, not throughput.
type appendWindow struct {
	mu      sync.Mutex
	changed sync.Cond
	limit   int // messages allowed in flight
	inUse   int
	max     int

	base      time.Duration // lowest latency ever seen
	roundLeft int           // replies left in this round
	roundMin  time.Duration // lowest latency in this round
	// full says the window was full at some point in this round. A window
	// that never filled says nothing about whether a wider one would help
	// (the messages came too slowly to fill it), so it does not grow.
	full      bool
	slowStart bool
}

// The least of Vegas' thresholds, in messages queued at the server beyond
// what the link holds; wide windows use fractions of their width.
const (
	minQueued = 2
	maxQueued = 4
)

// initialWindow is where every connection starts: what each one always had
// in flight before the window adapted.
const initialWindow = 4

// maxAppendsPerConn bounds one connection's window. The bytes in flight
// are bounded apart from it (see MemoryBudget).
const maxAppendsPerConn = 64

func newAppendWindow(max int) *appendWindow {
	w := &appendWindow{limit: min(initialWindow, max), max: max, slowStart: true}
	w.changed.L = &w.mu
	w.roundLeft = w.limit
	return w
}

// acquire waits for room in the window.
func (w *appendWindow) acquire() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for w.inUse >= w.limit {
		w.changed.Wait()
	}
	w.inUse++
	if w.inUse >= w.limit {
		w.full = true
	}
}

// release gives back one place; latency is how long the APPEND took from
// the end of its command to its reply, or 0 when it says nothing about the
// link (no APPEND was sent, or it failed).
func (w *appendWindow) release(latency time.Duration) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.inUse--
	if latency > 0 {
		w.sample(latency)
	}
	w.changed.Broadcast()
}

// sample feeds one APPEND latency into the window.
func (w *appendWindow) sample(latency time.Duration) {
	if w.base == 0 || latency < w.base {
		w.base = latency
	}
	if w.roundMin == 0 || latency < w.roundMin {
		w.roundMin = latency
	}
	w.roundLeft--
	if w.roundLeft > 0 {
		return
	}
	queued := float64(w.limit) * (1 - float64(w.base)/float64(w.roundMin))
	grow := max(minQueued, float64(w.limit)/4)
	shrink := max(maxQueued, float64(w.limit)/2)
	switch {
	case queued > shrink:
		w.slowStart = false
		w.limit = max(w.limit*3/4, 1)
	case !w.full:
		// Too few messages came to fill it: nothing learned.
	case w.slowStart && queued < minQueued:
		w.limit = min(w.limit*2, w.max)
	case queued < grow:
		w.slowStart = false
		w.limit = min(w.limit+1, w.max)
	default:
		w.slowStart = false
	}
	w.roundLeft, w.roundMin, w.full = w.limit, 0, w.inUse >= w.limit
}

// reset starts over after the connection was lost: the next one may run
// over another path, to a server in another state.
func (w *appendWindow) reset() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.limit = min(initialWindow, w.max)
	w.base, w.roundMin, w.roundLeft, w.slowStart, w.full = 0, 0, w.limit, true, false
	w.changed.Broadcast()
}

func (w *appendWindow) width() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.limit
}

// MemoryBudget bounds the bytes of spooled messages held in memory between
// RETR and the confirmed APPEND, whatever the windows allow: the producer
// takes a message's bytes before handing it on, and they come back when its
// spool is closed. One message is always let through, however large, so
// that a single message over the budget still moves. Runs in one process
// may share one (Config.Memory), so that running many accounts at once
// does not multiply it.
type MemoryBudget struct {
	mu      sync.Mutex
	changed sync.Cond
	free    int64
	total   int64
}

// inFlightMemory is the MemoryBudget of a run of its own: with the 1 MiB spool threshold,
// at least 16 messages in memory and usually hundreds; larger ones are on
// disk and cost nothing here.
const inFlightMemory = 16 << 20

// NewMemoryBudget returns a budget of total bytes.
func NewMemoryBudget(total int64) *MemoryBudget {
	b := &MemoryBudget{free: total, total: total}
	b.changed.L = &b.mu
	return b
}

// take waits until n bytes are free, or until nothing is taken at all. It
// returns false when done is closed first.
func (b *MemoryBudget) take(n int64, done <-chan struct{}) bool {
	if n == 0 {
		return true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.free < n && b.free < b.total {
		// Wake the wait below when done closes.
		stop := make(chan struct{})
		defer close(stop)
		go func() {
			select {
			case <-done:
				b.mu.Lock()
				b.changed.Broadcast()
				b.mu.Unlock()
			case <-stop:
			}
		}()
	}
	for b.free < n && b.free < b.total {
		select {
		case <-done:
			return false
		default:
		}
		b.changed.Wait()
	}
	b.free -= n
	return true
}

func (b *MemoryBudget) give(n int64) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.free += n
	b.mu.Unlock()
	b.changed.Broadcast()
}
