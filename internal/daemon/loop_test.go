package daemon

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/state"
)

// TestCyclesForwardNewMail drives one account's cycles by hand: the first
// copies what is there, mail that arrives between cycles is copied by the
// next one, a cycle with nothing new copies nothing, and every wait is the
// interval.
func TestCyclesForwardNewMail(t *testing.T) {
	mb := newMailbox(t, 3)
	svc, _, logs := newTestService(t, nil)
	acct := mb.account("home")
	acct.Policy.Jitter = DefaultJitter
	l := newLoop(svc, acct)
	defer l.close()
	ctx := context.Background()

	steps := []struct {
		deliver              int
		wantListed, wantCopy int64
	}{
		{0, 3, 3},
		{2, 5, 2},
		{0, 5, 0},
		{1, 6, 1},
	}
	for i, st := range steps {
		mb.deliver(st.deliver)
		r := l.cycle(ctx)
		if r.Err != nil {
			t.Fatalf("cycle %d: %v", i+1, r.Err)
		}
		if r.Listed != st.wantListed || r.Appended != st.wantCopy {
			t.Errorf("cycle %d: listed %d, appended %d; want %d, %d", i+1, r.Listed, r.Appended, st.wantListed, st.wantCopy)
		}
		if r.Next != 5*time.Minute || r.Failures != 0 {
			t.Errorf("cycle %d: next in %v after %d failures, want 5m after 0", i+1, r.Next, r.Failures)
		}
	}
	mb.assertForwardedOnce()
	if n := len(mb.pop.Messages()); n != 6 {
		t.Errorf("the default policy keeps mail on the server: %d left, want 6", n)
	}
	if got := strings.Count(logs.String(), `msg="cycle done"`); got != len(steps) {
		t.Errorf("%d summary lines for %d cycles", got, len(steps))
	}
	for _, want := range []string{"listed=6 appended=1 deleted=0 left_behind=0 bytes=", "next_run=", "next_in=5m0s", "account=home"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log lacks %q:\n%s", want, logs.String())
		}
	}
}

// TestLoginDelayBackoff: a server that answers [LOGIN-DELAY] to the login
// (USER/PASS or AUTH, whichever the client uses) makes the account wait 5m,
// then 10m, then 20m, whatever its interval; the metrics show the backoff;
// the first success goes back to the interval. Nothing is retrieved while
// the server refuses.
func TestLoginDelayBackoff(t *testing.T) {
	for _, mech := range []bridge.AuthMech{bridge.AuthUser, bridge.AuthPlain} {
		t.Run(string(mech), func(t *testing.T) {
			mb := newMailbox(t, 2)
			svc, _, _ := newTestService(t, nil)
			acct := mb.account("isp")
			acct.POP3.Auth = mech
			acct.Policy = Policy{Interval: 20 * time.Millisecond, MaxBackoff: time.Hour}
			l := newLoop(svc, acct)
			defer l.close()
			svc.metrics.add("isp")
			mb.refuseLogin("LOGIN-DELAY")
			for i, want := range []time.Duration{5 * time.Minute, 10 * time.Minute, 20 * time.Minute} {
				r := l.cycle(context.Background())
				if r.Kind != KindLoginDelay || r.Failures != i+1 || r.Backoff != want || r.Next != want {
					t.Fatalf("failure %d: kind %q, failures %d, backoff %v, next %v; want login-delay, %d, %v (err: %v)",
						i+1, r.Kind, r.Failures, r.Backoff, r.Next, i+1, want, r.Err)
				}
			}
			_, text := scrape(t, svc, "/metrics")
			if got := metricLine(text, `pop2imap_bridge_backoff_seconds{account="isp"}`); !strings.HasSuffix(got, " 1200") {
				t.Errorf("backoff metric: %q, want 1200", got)
			}
			if got := metricLine(text, `pop2imap_bridge_errors_total{account="isp",kind="login-delay"}`); !strings.HasSuffix(got, " 3") {
				t.Errorf("errors metric: %q, want 3", got)
			}
			if mb.commands("RETR") != 0 {
				t.Error("messages were retrieved while the server refused the login")
			}

			mb.pop.SetFault(pop3test.Fault{})
			r := l.cycle(context.Background())
			if r.Err != nil || r.Appended != 2 || r.Backoff != 20*time.Millisecond || r.Failures != 0 {
				t.Fatalf("after the delay: err %v, appended %d, backoff %v, failures %d", r.Err, r.Appended, r.Backoff, r.Failures)
			}
			_, text = scrape(t, svc, "/metrics")
			if got := metricLine(text, `pop2imap_bridge_backoff_seconds{account="isp"}`); !strings.HasSuffix(got, " 0") {
				t.Errorf("backoff metric after a success: %q, want 0", got)
			}
			mb.assertForwardedOnce()
		})
	}
}

// TestTemporaryBackoff: [IN-USE] and an unreachable server back off from
// 30s, doubling, up to the cap; no inner retries hide a failure from the
// scheduler (one login per cycle).
func TestTemporaryBackoff(t *testing.T) {
	mb := newMailbox(t, 1)
	svc, _, _ := newTestService(t, nil)
	acct := mb.account("busy")
	acct.Policy = Policy{Interval: time.Minute, MaxBackoff: 2 * time.Minute}
	l := newLoop(svc, acct)
	defer l.close()
	mb.refuseLogin("IN-USE")
	for i, want := range []time.Duration{30 * time.Second, time.Minute, 2 * time.Minute, 2 * time.Minute} {
		r := l.cycle(context.Background())
		if r.Kind != KindInUse || r.Backoff != want {
			t.Fatalf("failure %d: kind %q, backoff %v; want in-use, %v (err: %v)", i+1, r.Kind, r.Backoff, want, r.Err)
		}
	}
	if got := mb.logins(); got != 4 {
		t.Errorf("%d logins for 4 cycles: the bridge retried inside a cycle", got)
	}

	down := mb.account("down")
	down.POP3.Addr = "127.0.0.1:1" // nothing listens there
	ld := newLoop(svc, down)
	defer ld.close()
	for i, want := range []time.Duration{30 * time.Second, time.Minute} {
		r := ld.cycle(context.Background())
		if r.Kind != KindUnreachable || r.Backoff != want {
			t.Fatalf("unreachable, failure %d: kind %q, backoff %v; want unreachable, %v (err: %v)", i+1, r.Kind, r.Backoff, want, r.Err)
		}
	}
}

// TestDeleteAfterFakeClock: with a 7-day policy the copies stay on the
// POP3 server until 7 days of the scheduler's clock have passed since their
// append was recorded, then go; nothing is copied twice. (The journal
// stamps its records with the wall clock, so every copy here counts from
// the real start of the test.)
func TestDeleteAfterFakeClock(t *testing.T) {
	mb := newMailbox(t, 3)
	svc, clock, _ := newTestService(t, nil)
	acct := mb.account("retain")
	acct.Bridge.DeleteAfter = 7 * 24 * time.Hour
	l := newLoop(svc, acct)
	defer l.close()
	steps := []struct {
		advance                   time.Duration
		deliver                   int
		wantAppended, wantDeleted int64
		wantOnServer              int
	}{
		{0, 0, 3, 0, 3},
		{3 * 24 * time.Hour, 1, 1, 0, 4},
		{4*24*time.Hour - time.Hour, 0, 0, 0, 4}, // 6 days 23 hours
		{2 * time.Hour, 0, 0, 4, 0},              // 7 days 1 hour
		{time.Hour, 1, 1, 0, 1},                  // a new copy starts its own 7 days
	}
	for i, st := range steps {
		clock.Advance(st.advance)
		mb.deliver(st.deliver)
		r := l.cycle(context.Background())
		if r.Err != nil {
			t.Fatal(r.Err)
		}
		if r.Appended != st.wantAppended || r.Deleted != st.wantDeleted || len(mb.pop.Messages()) != st.wantOnServer {
			t.Errorf("step %d: appended %d, deleted %d, %d on the server; want %d, %d, %d",
				i+1, r.Appended, r.Deleted, len(mb.pop.Messages()), st.wantAppended, st.wantDeleted, st.wantOnServer)
		}
	}
	mb.assertForwardedOnce()
}

// TestBaselineOnlyOnEmptyJournal: --baseline skips the mail already there
// at the first cycle, and the bridge forwards only what comes later. A
// restart with --baseline still set does not skip the mail that arrived
// while the bridge was stopped, because the journal is no longer empty.
func TestBaselineOnlyOnEmptyJournal(t *testing.T) {
	mb := newMailbox(t, 4)
	old := len(mb.sent)
	svc, _, _ := newTestService(t, nil)
	acct := mb.account("fresh")
	acct.Baseline = true
	acct.Bridge.Delete = true
	l := newLoop(svc, acct)
	r := l.cycle(context.Background())
	if r.Err != nil || r.Baselined != 4 || r.Appended != 0 || mb.commands("RETR") != 0 {
		t.Fatalf("baseline cycle: err %v, baselined %d, appended %d, %d RETR", r.Err, r.Baselined, r.Appended, mb.commands("RETR"))
	}
	mb.deliver(1)
	if r := l.cycle(context.Background()); r.Err != nil || r.Baselined != 0 || r.Appended != 1 {
		t.Fatalf("next cycle: err %v, baselined %d, appended %d", r.Err, r.Baselined, r.Appended)
	}
	l.close()

	mb.deliver(2) // while the bridge is stopped
	restarted := newLoop(svc, acct)
	defer restarted.close()
	if r := restarted.cycle(context.Background()); r.Err != nil || r.Baselined != 0 || r.Appended != 2 {
		t.Fatalf("after a restart with baseline still set: err %v, baselined %d, appended %d", r.Err, r.Baselined, r.Appended)
	}
	got := mb.imap.Messages(folder)
	if len(got) != 3 {
		t.Fatalf("folder holds %d messages, want the 3 that came after the baseline", len(got))
	}
	mb.sent = mb.sent[old:]
	mb.assertForwardedOnce()
	if n := len(mb.pop.Messages()); n != old {
		t.Errorf("%d messages on the server, want the %d baselined ones (never deleted)", n, old)
	}
}

// TestBaselineRetriedUntilFirstSuccess: a baseline cycle that cannot log in
// baselines at the next attempt instead, not later mail as new.
func TestBaselineRetriedUntilFirstSuccess(t *testing.T) {
	mb := newMailbox(t, 2)
	svc, _, _ := newTestService(t, nil)
	acct := mb.account("late")
	acct.Baseline = true
	l := newLoop(svc, acct)
	defer l.close()
	mb.refuseLogin("SYS/TEMP")
	if r := l.cycle(context.Background()); r.Err == nil {
		t.Fatalf("the login fault did not fail the cycle: %q", mb.pop.Log())
	}
	mb.pop.SetFault(pop3test.Fault{})
	if r := l.cycle(context.Background()); r.Err != nil || r.Baselined != 2 || r.Appended != 0 {
		t.Fatalf("second attempt: err %v, baselined %d, appended %d", r.Err, r.Baselined, r.Appended)
	}
}

// TestJournalLockedIsAnError: two loops on one journal (say, a forgotten
// second bridge) fail with a journal error rather than both writing.
func TestJournalLockedIsAnError(t *testing.T) {
	mb := newMailbox(t, 1)
	svc, _, _ := newTestService(t, nil)
	acct := mb.account("twice")
	j, err := state.Open(acct.Journal)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	l := newLoop(svc, acct)
	defer l.close()
	r := l.cycle(context.Background())
	if r.Kind != KindJournal || r.Backoff != 5*time.Minute {
		t.Fatalf("kind %q, backoff %v (err %v); want journal, 5m", r.Kind, r.Backoff, r.Err)
	}
}

// TestShutdownMidMessage: cancelling during a RETR lets the cycle finish
// the messages in hand, record them, and stop without counting a failure.
func TestShutdownMidMessage(t *testing.T) {
	mb := newMailbox(t, 5)
	svc, _, _ := newTestService(t, nil)
	acct := mb.account("term")
	l := newLoop(svc, acct)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	mb.pop.SetFault(pop3test.Fault{Command: "RETR", Nth: 2, Hook: cancel})
	r := l.cycle(ctx)
	l.close()
	if !r.Stopped || r.Failures != 0 {
		t.Fatalf("stopped %v, failures %d, err %v", r.Stopped, r.Failures, r.Err)
	}
	if r.Appended == 0 {
		t.Fatal("the message being retrieved was not finished")
	}
	mb.pop.SetFault(pop3test.Fault{})
	l = newLoop(svc, acct)
	defer l.close()
	r2 := l.cycle(context.Background())
	if r2.Err != nil {
		t.Fatal(r2.Err)
	}
	if r.Appended+r2.Appended != 5 {
		t.Errorf("appended %d then %d, want 5 in all", r.Appended, r2.Appended)
	}
	mb.assertForwardedOnce()
}
