package daemon

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/pop3test"
)

// TestLoginDelayRaisesTheInterval: a server that announces LOGIN-DELAY 900
// (RFC 2449) is never logged in to more often than every 15 minutes, even
// with jitter, even after a failed cycle, and the raise is logged once; a
// LOGIN-DELAY shorter than the interval changes nothing.
func TestLoginDelayRaisesTheInterval(t *testing.T) {
	mb := newMailboxWith(t, 2, pop3test.Config{LoginDelay: "900"})
	svc, _, logs := newTestService(t, nil)
	acct := mb.account("slow")
	acct.Policy.Jitter = DefaultJitter
	l := newLoop(svc, acct)
	defer l.close()
	const want = 15 * time.Minute
	for i := range 3 {
		r := l.cycle(context.Background())
		if r.Err != nil {
			t.Fatalf("cycle %d: %v", i+1, r.Err)
		}
		if r.Backoff != want || r.Next < want {
			t.Errorf("cycle %d: backoff %v, next %v; want %v and no less", i+1, r.Backoff, r.Next, want)
		}
	}
	mb.refuseLogin("SYS/TEMP")
	if r := l.cycle(context.Background()); r.Err == nil || r.Next < want {
		t.Errorf("failed cycle: err %v, next %v; want a failure and no less than %v", r.Err, r.Next, want)
	}
	if n := strings.Count(logs.String(), "LOGIN-DELAY"); n != 1 {
		t.Errorf("the raise is logged %d times, want once:\n%s", n, logs.String())
	}

	short := newMailboxWith(t, 1, pop3test.Config{LoginDelay: "60 USER"})
	svc2, _, logs2 := newTestService(t, nil)
	l2 := newLoop(svc2, short.account("fast"))
	defer l2.close()
	if r := l2.cycle(context.Background()); r.Err != nil || r.Backoff != DefaultInterval {
		t.Errorf("LOGIN-DELAY 60 under a 5m interval: err %v, backoff %v; want %v", r.Err, r.Backoff, DefaultInterval)
	}
	if strings.Contains(logs2.String(), "LOGIN-DELAY") {
		t.Errorf("a LOGIN-DELAY below the interval was logged:\n%s", logs2.String())
	}
}

// TestNoJournalBeforeLogin: an account whose logins fail creates no
// journal; the first cycle that logs in does.
func TestNoJournalBeforeLogin(t *testing.T) {
	mb := newMailbox(t, 1)
	svc, _, _ := newTestService(t, nil)
	acct := mb.account("typo")
	mb.refuseLogin("AUTH")
	l := newLoop(svc, acct)
	defer l.close()
	if r := l.cycle(context.Background()); r.Err == nil {
		t.Fatal("a refused login succeeded")
	}
	if _, err := os.Stat(acct.Journal); !os.IsNotExist(err) {
		t.Errorf("a failed login left a journal: %v", err)
	}
	if _, err := os.Stat(acct.Journal + ".lock"); !os.IsNotExist(err) {
		t.Errorf("a failed login left a lock file: %v", err)
	}
}
