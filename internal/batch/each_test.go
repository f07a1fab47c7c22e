package batch

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
)

// TestEach: every index once, no more than workers at a time, and no new
// index handed out after fn says stop or ctx ends.
func TestEach(t *testing.T) {
	var running, peak atomic.Int64
	var mu sync.Mutex
	seen := map[int]int{}
	fed := each(context.Background(), 3, 100, func(k int) bool {
		n := running.Add(1)
		defer running.Add(-1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		mu.Lock()
		seen[k]++
		mu.Unlock()
		return true
	})
	if fed != 100 || len(seen) != 100 || peak.Load() > 3 {
		t.Fatalf("fed %d, saw %d distinct, peak %d", fed, len(seen), peak.Load())
	}
	for k, n := range seen {
		if n != 1 {
			t.Errorf("index %d called %d times", k, n)
		}
	}

	var calls atomic.Int64
	fed = each(context.Background(), 1, 100, func(k int) bool { calls.Add(1); return k < 9 })
	if fed > 11 || calls.Load() != int64(fed) {
		t.Errorf("after a stop at 9: fed %d, %d calls", fed, calls.Load())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if fed := each(ctx, 2, 100, func(int) bool { t.Error("called after cancel"); return true }); fed != 0 {
		t.Errorf("a cancelled context fed %d", fed)
	}
}
