package daemon

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"
)

// TestArrivalWithinOneInterval is the assertion of the live demonstration
// (TestDovecotBridgeLive in cmd/pop2imap) on a fake clock, so that it runs
// everywhere: a message that lands in the maildrop just after a cycle
// reaches the IMAP folder at the next cycle, which comes at most one
// interval plus its jitter later, whatever the random draw.
func TestArrivalWithinOneInterval(t *testing.T) {
	const interval = 5 * time.Second
	for _, draw := range []float64{0, 0.5, 0.999999} {
		t.Run(fmt.Sprintf("draw %v", draw), func(t *testing.T) {
			mb := newMailbox(t, 2)
			got := newReports("live")
			clock := newFakeClock()
			svc := New(Options{
				Logger:  slog.New(slog.NewTextHandler(&syncBuffer{}, nil)),
				Clock:   clock,
				Rand:    func() float64 { return draw },
				OnCycle: got.add,
			})
			ctx, cancel := context.WithCancel(context.Background())
			defer func() { cancel(); svc.Wait() }()
			acct := mb.account("live")
			acct.Policy = Policy{Interval: interval, MaxBackoff: time.Hour, Jitter: DefaultJitter}
			svc.Apply(ctx, []Account{acct})
			prev := got.next(t, "live")
			if prev.Err != nil || prev.Appended != 2 {
				t.Fatalf("first cycle: %v, appended %d", prev.Err, prev.Appended)
			}
			bound := interval + time.Duration(float64(interval)*DefaultJitter)
			for round := 0; round < 3; round++ {
				clock.waitForWaiters(t, 1)
				mb.deliver(1)
				// The loop sleeps prev.Next; moving the clock that far must
				// bring the cycle that copies the new message.
				if prev.Next <= 0 || prev.Next > bound {
					t.Fatalf("round %d: the next cycle is %v away, want at most %v", round, prev.Next, bound)
				}
				clock.Advance(prev.Next)
				r := got.next(t, "live")
				if r.Err != nil || r.Appended != 1 {
					t.Fatalf("round %d: the cycle after the seeding: %v, appended %d", round, r.Err, r.Appended)
				}
				t.Logf("round %d: arrived %v after seeding (interval %v, draw %v)", round, prev.Next, interval, draw)
				prev = r
			}
			mb.assertForwardedOnce()
		})
	}
}
