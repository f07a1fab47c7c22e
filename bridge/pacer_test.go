package bridge

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestPacer proves the retry policy's arithmetic: as many retries as
// allowed and no more, waits that double up to the cap, a server's floor
// honoured, and a cancelled context ending the wait at once.
func TestPacer(t *testing.T) {
	p := newPacer(3, time.Microsecond)
	for i := 1; i <= 3; i++ {
		ok, err := p.again(context.Background())
		if !ok || err != nil {
			t.Fatalf("retry %d: %v, %v", i, ok, err)
		}
		if want := time.Microsecond << i; p.delay != want {
			t.Fatalf("after retry %d the next wait is %v, want %v", i, p.delay, want)
		}
	}
	if ok, err := p.again(context.Background()); ok || err != nil {
		t.Fatalf("a fourth retry of 3: %v, %v", ok, err)
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	p = newPacer(1, maxRetryDelay)
	p.again(cancelled)
	if p.delay != maxRetryDelay {
		t.Fatalf("the wait grew past the cap to %v", p.delay)
	}

	// A floor from the server is waited for even when the delay is shorter:
	// a cancelled context shows which wait was chosen without waiting it.
	p = newPacer(1, time.Nanosecond)
	floorAsked := false
	p.floor = func() time.Duration { floorAsked = true; return time.Hour }
	ok, err := p.again(cancelled)
	if ok || !errors.Is(err, context.Canceled) || !floorAsked {
		t.Fatalf("cancelled wait with a floor: %v, %v (floor asked: %v)", ok, err, floorAsked)
	}
}
