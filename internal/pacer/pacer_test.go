package pacer

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
	p := New(3, time.Microsecond)
	for i := 1; i <= 3; i++ {
		ok, err := p.Again(context.Background())
		if !ok || err != nil {
			t.Fatalf("retry %d: %v, %v", i, ok, err)
		}
		if want := time.Microsecond << i; p.delay != want {
			t.Fatalf("after retry %d the next wait is %v, want %v", i, p.delay, want)
		}
	}
	if ok, err := p.Again(context.Background()); ok || err != nil {
		t.Fatalf("a fourth retry of 3: %v, %v", ok, err)
	}

	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	p = New(1, MaxDelay)
	p.Again(cancelled)
	if p.delay != MaxDelay {
		t.Fatalf("the wait grew past the cap to %v", p.delay)
	}

	// A floor from the server is waited for even when the delay is shorter:
	// a cancelled context shows which wait was chosen without waiting it.
	p = New(1, time.Nanosecond)
	floorAsked := false
	p.Floor = func() time.Duration { floorAsked = true; return time.Hour }
	ok, err := p.Again(cancelled)
	if ok || !errors.Is(err, context.Canceled) || !floorAsked {
		t.Fatalf("cancelled wait with a floor: %v, %v (floor asked: %v)", ok, err, floorAsked)
	}
}
