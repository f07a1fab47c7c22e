package daemon

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/pop3test"
)

// reports collects cycle reports by account, for tests that run real loops.
type reports struct {
	mu sync.Mutex
	ch map[string]chan Report
}

func newReports(names ...string) *reports {
	r := &reports{ch: map[string]chan Report{}}
	for _, n := range names {
		r.ch[n] = make(chan Report, 100)
	}
	return r
}

func (r *reports) add(rep Report) {
	r.mu.Lock()
	ch := r.ch[rep.Account]
	r.mu.Unlock()
	ch <- rep
}

func (r *reports) next(t *testing.T, account string) Report {
	t.Helper()
	r.mu.Lock()
	ch := r.ch[account]
	r.mu.Unlock()
	select {
	case rep := <-ch:
		return rep
	case <-time.After(30 * time.Second):
		t.Fatalf("no cycle of account %q", account)
		return Report{}
	}
}

// TestBrokenAccountBesideHealthy: an account whose server hangs and then
// fails does not hold up another account, which keeps forwarding new mail;
// the health check names the broken one once it has failed for longer than
// three intervals, and the metrics count each account apart.
func TestBrokenAccountBesideHealthy(t *testing.T) {
	good, bad := newMailbox(t, 2), newMailbox(t, 1)
	release := make(chan struct{})
	var releaseOnce sync.Once
	t.Cleanup(func() { releaseOnce.Do(func() { close(release) }) }) // before the servers close
	bad.refuseLogin("SYS/TEMP")
	bad.pop.AddFault(pop3test.Fault{Command: "CAPA", Hook: func() { <-release }})

	got := newReports("good", "bad")
	svc, clock, _ := newTestService(t, got.add)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); svc.Wait() }()
	svc.Apply(ctx, []Account{good.account("good"), bad.account("bad")})

	// The bad account hangs in its first login; the good one goes on.
	if r := got.next(t, "good"); r.Err != nil || r.Appended != 2 {
		t.Fatalf("good, cycle 1: err %v, appended %d", r.Err, r.Appended)
	}
	clock.waitForWaiters(t, 1)
	good.deliver(1)
	clock.Advance(5 * time.Minute)
	if r := got.next(t, "good"); r.Err != nil || r.Appended != 1 {
		t.Fatalf("good, cycle 2: err %v, appended %d", r.Err, r.Appended)
	}

	releaseOnce.Do(func() { close(release) })
	r := got.next(t, "bad")
	if r.Kind != KindTemporary || r.Failures != 1 || r.Backoff != 30*time.Second {
		t.Fatalf("bad, cycle 1: kind %q, failures %d, backoff %v (err %v)", r.Kind, r.Failures, r.Backoff, r.Err)
	}
	clock.waitForWaiters(t, 2)
	if code, text := scrape(t, svc, "/healthz"); code != 200 {
		t.Errorf("healthz %d within the grace of 3 intervals: %s", code, text)
	}

	// Sixteen minutes later the good account has succeeded again, and the
	// bad one has failed for more than three intervals since it started.
	for i := 0; i < 4; i++ {
		clock.Advance(4 * time.Minute)
		clock.waitForWaiters(t, 2)
	}
	code, text := scrape(t, svc, "/healthz")
	if code != 503 || !strings.Contains(text, "bad: ") || strings.Contains(text, "good") {
		t.Errorf("healthz %d %q; want 503 naming only the bad account", code, text)
	}
	_, metrics := scrape(t, svc, "/metrics")
	for series, want := range map[string]string{
		`pop2imap_bridge_messages_forwarded_total{account="good"}`:       " 3",
		`pop2imap_bridge_messages_forwarded_total{account="bad"}`:        " 0",
		`pop2imap_bridge_consecutive_failures{account="good"}`:           " 0",
		`pop2imap_bridge_errors_total{account="bad",kind="temporary"}`:   "",
		`pop2imap_bridge_cycles_total{account="good",result="ok"}`:       "",
		`pop2imap_bridge_last_success_timestamp_seconds{account="good"}`: "",
	} {
		line := metricLine(metrics, series)
		if line == "" || !strings.HasSuffix(line, want) {
			t.Errorf("metric %s: %q, want a value ending %q", series, line, want)
		}
	}
	if line := metricLine(metrics, `pop2imap_bridge_last_success_timestamp_seconds{account="bad"}`); !strings.HasSuffix(line, " 0") {
		t.Errorf("the bad account has a last success: %q", line)
	}
	good.assertForwardedOnce()
}

// TestApplyReload: a reload leaves an unchanged account running, restarts a
// changed one after its current cycle (with its journal, so nothing is
// copied twice), starts a new one, and drops a removed one's metrics.
func TestApplyReload(t *testing.T) {
	a, b, c := newMailbox(t, 1), newMailbox(t, 1), newMailbox(t, 1)
	got := newReports("a", "b", "c")
	svc, clock, logs := newTestService(t, got.add)
	ctx, cancel := context.WithCancel(context.Background())
	defer func() { cancel(); svc.Wait() }()

	acctA, acctB, acctC := a.account("a"), b.account("b"), c.account("c")
	acctA.Fingerprint, acctB.Fingerprint, acctC.Fingerprint = "a1", "b1", "c1"
	svc.Apply(ctx, []Account{acctA, acctB})
	got.next(t, "a")
	got.next(t, "b")
	clock.waitForWaiters(t, 2)
	loopA := svc.loops["a"]

	changedB := acctB
	changedB.Fingerprint = "b2"
	changedB.Bridge.Delete = true
	svc.Apply(ctx, []Account{acctA, changedB, acctC})
	if r := got.next(t, "c"); r.Err != nil || r.Appended != 1 {
		t.Fatalf("new account c: err %v, appended %d", r.Err, r.Appended)
	}
	if r := got.next(t, "b"); r.Err != nil || r.Appended != 0 || r.Deleted != 1 {
		t.Fatalf("changed account b: err %v, appended %d, deleted %d; want the new delete policy applied, nothing copied again", r.Err, r.Appended, r.Deleted)
	}
	if svc.loops["a"] != loopA {
		t.Error("the unchanged account a was restarted")
	}
	if n := strings.Count(logs.String(), `msg="account started" account=a`); n != 1 {
		t.Errorf("account a started %d times", n)
	}

	loopC := svc.loops["c"]
	svc.Apply(ctx, []Account{acctA, changedB})
	<-loopC.done
	_, metrics := scrape(t, svc, "/metrics")
	if strings.Contains(metrics, `account="c"`) {
		t.Error("the removed account c still has metrics")
	}
	if code, text := scrape(t, svc, "/healthz"); code != 200 || !strings.Contains(text, "2 accounts") {
		t.Errorf("healthz %d %q", code, text)
	}
	b.assertForwardedOnce()
	c.assertForwardedOnce()
}

// TestRunOnce runs one cycle per account and leaves nothing running.
func TestRunOnce(t *testing.T) {
	a, b := newMailbox(t, 2), newMailbox(t, 1)
	svc, _, _ := newTestService(t, nil)
	acctB := b.account("b")
	acctB.IMAP.Secret = a.account("x").POP3.Secret // the wrong password
	reps := svc.RunOnce(context.Background(), []Account{a.account("a"), acctB})
	if reps[0].Err != nil || reps[0].Appended != 2 {
		t.Errorf("a: err %v, appended %d", reps[0].Err, reps[0].Appended)
	}
	if reps[1].Kind != KindAuth {
		t.Errorf("b: kind %q, err %v; want auth", reps[1].Kind, reps[1].Err)
	}
	a.assertForwardedOnce()
}
