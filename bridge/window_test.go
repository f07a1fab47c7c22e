package bridge

import (
	"testing"
	"time"
)

// simulate runs a window against a model of one connection: a link with
// round trip rtt to a server that stores one message every service, one at
// a time, and a sender that always has a message ready. It returns the
// window's width after n messages.
func simulate(w *appendWindow, rtt, service time.Duration, n int) int {
	// In a steady state with k messages in flight, each waits behind the
	// others at the server once the link no longer holds them all.
	for range n {
		k := w.limit
		for i := 0; i < k; i++ {
			w.acquire()
		}
		latency := max(rtt+service, time.Duration(k)*service)
		for i := 0; i < k; i++ {
			w.release(latency)
		}
	}
	return w.width()
}

// TestAppendWindowAdapts checks that the window follows the link: wide on a
// long round trip to a fast server, narrow where the server is the limit,
// and narrower again when the server slows down.
func TestAppendWindowAdapts(t *testing.T) {
	tests := []struct {
		name         string
		rtt, service time.Duration
		min, max     int
	}{
		// 50 ms to a server storing a message every 2 ms: 25 fill the link.
		{"long link, fast server", 50 * time.Millisecond, 2 * time.Millisecond, 25, maxAppendsPerConn},
		{"100 ms link", 100 * time.Millisecond, 2 * time.Millisecond, 50, maxAppendsPerConn},
		// On loopback the server is the limit from the first message:
		// more in flight would only wait there.
		{"loopback", 100 * time.Microsecond, 2 * time.Millisecond, 1, 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newAppendWindow(maxAppendsPerConn)
			got := simulate(w, tt.rtt, tt.service, 200)
			t.Logf("window %d", got)
			if got < tt.min || got > tt.max {
				t.Errorf("window %d after 200 rounds, want %d to %d", got, tt.min, tt.max)
			}
		})
	}

	t.Run("server slows down", func(t *testing.T) {
		w := newAppendWindow(maxAppendsPerConn)
		wide := simulate(w, 50*time.Millisecond, 2*time.Millisecond, 200)
		// The same link, but the server now takes 10 ms a message: 5 fill
		// the link, and anything beyond waits at the server.
		narrow := simulate(w, 50*time.Millisecond, 10*time.Millisecond, 200)
		t.Logf("window %d, then %d", wide, narrow)
		if narrow >= wide || narrow > 16 {
			t.Errorf("window %d on a fast server, %d once it slowed down; want it to shrink to at most 16", wide, narrow)
		}
	})
}

// TestAppendWindowGrowsOnlyWhenFull checks that a window the sender never
// filled does not grow: its replies say nothing about a wider one.
func TestAppendWindowGrowsOnlyWhenFull(t *testing.T) {
	w := newAppendWindow(maxAppendsPerConn)
	for range 1000 {
		w.acquire() // one message at a time
		w.release(50 * time.Millisecond)
	}
	if got := w.width(); got != initialWindow {
		t.Errorf("window %d after 1,000 messages sent one at a time, want %d", got, initialWindow)
	}
}

// TestAppendWindowBlocks checks that acquire waits while the window is full
// and goes on once a place is released.
func TestAppendWindowBlocks(t *testing.T) {
	w := newAppendWindow(maxAppendsPerConn)
	for range initialWindow {
		w.acquire()
	}
	got := make(chan struct{})
	go func() { w.acquire(); close(got) }()
	select {
	case <-got:
		t.Fatal("acquire went past a full window")
	case <-time.After(20 * time.Millisecond):
	}
	w.release(0)
	<-got
}

// TestMemBudget checks that the budget holds back a message that does not
// fit until another gives its bytes back, lets one through when nothing is
// taken however large it is, and gives up when done closes.
func TestMemBudget(t *testing.T) {
	b := NewMemoryBudget(100)
	never := make(chan struct{})
	if !b.take(200, never) {
		t.Fatal("a message over the whole budget was held back with nothing taken")
	}
	b.give(200)
	if !b.take(60, never) {
		t.Fatal("take 60 of 100 failed")
	}
	got := make(chan bool)
	go func() { got <- b.take(60, never) }()
	select {
	case <-got:
		t.Fatal("take 60 succeeded with 40 free")
	case <-time.After(20 * time.Millisecond):
	}
	b.give(60)
	if !<-got {
		t.Fatal("take failed after the bytes came back")
	}
	done := make(chan struct{})
	go func() { got <- b.take(60, done) }()
	close(done)
	if <-got {
		t.Fatal("take succeeded after done closed, with 40 free")
	}
}

func init() {
	// In-process servers store an APPEND before they read the next
	// command; the settling wait of a resumed session need not be long.
	settleQuiet = 50 * time.Millisecond
}
