package fleet

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/internal/tcprelay"
	"github.com/pop2imap/pop2imap/internal/testservers"
	"github.com/pop2imap/pop2imap/state"
)

// relay puts a relay counted by g in front of target.
func relay(t *testing.T, g *tcprelay.Gauge, target string) string {
	t.Helper()
	r, err := tcprelay.Listen(target, g.Handler)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r.Addr()
}

func secret(s string) bridge.SecretFunc {
	return func(context.Context) (string, error) { return s, nil }
}

// TestManyAccountsUnderOneCap runs 24 accounts, each with a POP3 and an
// IMAP server of its own, all on 127.0.0.1 and so one host to the cap,
// through counting relays: every account completes, and the servers never
// see more connections at once than the cap, whatever the accounts ask.
func TestManyAccountsUnderOneCap(t *testing.T) {
	const accounts, perAccount, maxConns = 24, 3, 7
	var seen tcprelay.Gauge
	r := New(6, maxConns)
	type acct struct {
		pair       *testservers.Pair
		pop3, imap *bridge.Endpoint
	}
	var all []acct
	for i := 0; i < accounts; i++ {
		p := testservers.Start(t, testservers.Config{
			POP3:     pop3test.Config{Username: "u", Password: "p"},
			IMAPUser: "i", IMAPPassword: "q"})
		for k := 0; k < perAccount; k++ {
			p.POP3.AddMessage(fmt.Sprintf("a%d-m%d", i, k), []byte(fmt.Sprintf("Subject: %d/%d\r\n\r\nbody\r\n", i, k)))
		}
		all = append(all, acct{pair: p,
			pop3: &bridge.Endpoint{Addr: relay(t, &seen, p.POP3.Addr()), Username: "u", TLS: bridge.TLSNone, Secret: secret("p"), Timeout: 10 * time.Second},
			imap: &bridge.Endpoint{Addr: relay(t, &seen, p.IMAP.Addr()), Username: "i", TLS: bridge.TLSNone, Secret: secret("q"), Timeout: 10 * time.Second}})
	}
	dir := t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, accounts)
	granted := make([]int, accounts)
	for i, a := range all {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = r.Do(context.Background(), Need{POP3: a.pop3, IMAP: a.imap, Appenders: 8}, func(ctx context.Context, g Grant) error {
				granted[i] = g.Appenders
				j, err := state.Open(filepath.Join(dir, fmt.Sprintf("%d.journal", i)))
				if err != nil {
					return err
				}
				defer j.Close()
				m := &bridge.Migrator{POP3: g.POP3, IMAP: g.IMAP, Journal: j,
					Config: bridge.Config{IMAPConns: g.Appenders, Delete: true, Retries: -1}}
				return m.Run(ctx)
			})
		}()
	}
	wg.Wait()
	for i, a := range all {
		if errs[i] != nil {
			t.Errorf("account %d: %v", i, errs[i])
			continue
		}
		if granted[i] < 1 {
			t.Errorf("account %d was granted %d appenders", i, granted[i])
		}
		if got := len(a.pair.IMAP.Messages("INBOX")); got != perAccount {
			t.Errorf("account %d: %d messages in the folder, want %d", i, got, perAccount)
		}
		if left := len(a.pair.POP3.Messages()); left != 0 {
			t.Errorf("account %d: %d messages left on POP3", i, left)
		}
	}
	if p := seen.Peak(); p > maxConns || p < 3 {
		t.Errorf("the servers saw %d connections at once; the cap is %d", p, maxConns)
	}
	if p := r.Peak()["127.0.0.1"]; p > maxConns {
		t.Errorf("the runner counted %d connections at once; the cap is %d", p, maxConns)
	}
	t.Logf("peak %d connections at once (cap %d)", seen.Peak(), maxConns)
}

// TestReservationCannotDeadlock has accounts that each hold every
// connection their reservation allows at once, and then borrow one more
// for a folder index, with a cap that fits one account and a half: if
// accounts took connections one by one they would deadlock; reserving all
// at once, and leaving a slot for the borrowers, every one finishes.
func TestReservationCannotDeadlock(t *testing.T) {
	ep := &bridge.Endpoint{Addr: "Mail.Example.:995"}
	imap := &bridge.Endpoint{Addr: "mail.example:993"}
	r := New(8, 4)
	var wg sync.WaitGroup
	var open, peak atomic.Int64
	var finished atomic.Int64
	for i := 0; i < 40; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := r.Do(context.Background(), Need{POP3: ep, IMAP: imap, Appenders: 4}, func(ctx context.Context, g Grant) error {
				// POP3, every appender (the first checks the folder), and
				// the folder index at once.
				var releases []func()
				for _, e := range append(append([]*bridge.Endpoint{g.POP3}, repeat(g.IMAP, g.Appenders)...), g.Index) {
					rel, err := e.Gate.Acquire(ctx)
					if err != nil {
						return err
					}
					n := open.Add(1)
					for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
					}
					releases = append(releases, rel)
				}
				for _, rel := range releases {
					open.Add(-1)
					rel()
					rel() // twice is once
				}
				finished.Add(1)
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if finished.Load() != 40 {
		t.Fatalf("%d of 40 accounts finished", finished.Load())
	}
	if p := peak.Load(); p > 4 {
		t.Errorf("%d connections at once to one host, cap 4", p)
	}
	if p := int64(r.Peak()["mail.example"]); p != peak.Load() {
		t.Errorf("the runner counted a peak of %d, the test %d", p, peak.Load())
	}
}

func repeat(ep *bridge.Endpoint, n int) []*bridge.Endpoint {
	out := make([]*bridge.Endpoint, n)
	for i := range out {
		out[i] = ep
	}
	return out
}

// TestFairShare: alone, an account gets every appender it asks for under
// the cap; among jobs others, its share of the cap.
func TestFairShare(t *testing.T) {
	pop := &bridge.Endpoint{Addr: "pop.example:995"}
	imap := &bridge.Endpoint{Addr: "imap.example:993"}
	r := New(4, 16)
	var alone int
	r.Do(context.Background(), Need{POP3: pop, IMAP: imap, Appenders: 8}, func(_ context.Context, g Grant) error {
		alone = g.Appenders
		return nil
	})
	if alone != 8 {
		t.Errorf("alone, an account got %d of 8 appenders under a cap of 16", alone)
	}

	// Four accounts in at once: of the 15 slots that the index's spare
	// leaves, 15/4 = 3 IMAP connections each, all of them to append on.
	hold := make(chan struct{})
	got := make(chan int, 4)
	var wg sync.WaitGroup
	var entered sync.WaitGroup
	entered.Add(4)
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r.inDo.Add(1) // as if all four were already waiting
			entered.Done()
			entered.Wait()
			r.Do(context.Background(), Need{POP3: pop, IMAP: imap, Appenders: 8}, func(_ context.Context, g Grant) error {
				got <- g.Appenders
				<-hold
				return nil
			})
			r.inDo.Add(-1)
		}()
	}
	for i := 0; i < 4; i++ {
		if n := <-got; n != 3 {
			t.Errorf("one of four accounts got %d appenders, want 3", n)
		}
	}
	close(hold)
	wg.Wait()
}

// TestCapTooLow: an account that could never fit is refused at once, with
// the cap it would need.
func TestCapTooLow(t *testing.T) {
	ep := &bridge.Endpoint{Addr: "127.0.0.1:110"}
	im := &bridge.Endpoint{Addr: "127.0.0.1:143"}
	r := New(1, 2)
	err := r.Do(context.Background(), Need{POP3: ep, IMAP: im, Appenders: 1}, func(context.Context, Grant) error {
		t.Fatal("ran")
		return nil
	})
	var ce *CapError
	if !errors.As(err, &ce) || ce.Need != 3 || ce.Cap != 2 || ce.Host != "127.0.0.1" {
		t.Fatalf("got %v", err)
	}
	// A check needs one connection per side: it fits.
	if err := r.Do(context.Background(), Need{POP3: ep, IMAP: im}, func(context.Context, Grant) error { return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestCancelWhileWaiting: an account waiting for room gives up when its
// context ends.
func TestCancelWhileWaiting(t *testing.T) {
	ep := &bridge.Endpoint{Addr: "h:1"}
	r := New(2, 1)
	hold := make(chan struct{})
	started := make(chan struct{})
	go r.Do(context.Background(), Need{POP3: ep}, func(context.Context, Grant) error {
		close(started)
		<-hold
		return nil
	})
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Do(ctx, Need{POP3: ep}, func(context.Context, Grant) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("got %v", err)
	}
	close(hold)
}

// TestFreshAccountsCostTwo: an account that appends reserves two
// connections (POP3 and the appender that checks the folder), not a third
// for a folder index it may never open, so more accounts run under one
// cap: with a cap of 7 on one host, three of them, one slot left spare.
func TestFreshAccountsCostTwo(t *testing.T) {
	pop := &bridge.Endpoint{Addr: "127.0.0.1:110"}
	imap := &bridge.Endpoint{Addr: "127.0.0.1:143"}
	need := Need{POP3: pop, IMAP: imap, Appenders: 1}
	r := New(8, 7)
	var leases []*lease
	for i := 0; i < 3; i++ {
		l, err := r.reserve(context.Background(), need)
		if err != nil {
			t.Fatal(err)
		}
		if l.appenders != 1 || l.slots["127.0.0.1"] != 2 {
			t.Fatalf("account %d reserved %v with %d appenders, want 2 slots and 1", i, l.slots, l.appenders)
		}
		leases = append(leases, l)
	}
	// A fourth would leave no slot spare: it waits, and gives up when its
	// context ends.
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.reserve(done, need); !errors.Is(err, context.Canceled) {
		t.Fatalf("a fourth account under a cap of 7: %v, want it to wait", err)
	}
	// A check borrows nothing: it may take the spare slot.
	if _, err := r.reserve(done, Need{IMAP: imap}); err != nil {
		t.Fatalf("a check with one slot free: %v", err)
	}
	r.reserved.give(map[string]int{"127.0.0.1": 1})
	// The index borrows the spare slot, beyond the leases.
	rel, err := r.borrowing(imap).Gate.Acquire(done)
	if err != nil {
		t.Fatalf("borrowing the spare slot: %v", err)
	}
	if _, err := r.borrowing(imap).Gate.Acquire(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("a second borrow over the cap: %v, want it to wait", err)
	}
	rel()
	for _, l := range leases {
		l.end()
	}
	if n := r.reserved.used["127.0.0.1"]; n != 0 {
		t.Errorf("%d slots still taken after every account ended", n)
	}
}
