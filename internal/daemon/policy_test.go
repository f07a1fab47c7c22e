package daemon

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/secret"
	"github.com/pop2imap/pop2imap/pop3"
	"github.com/pop2imap/pop2imap/state"
)

// TestBackoff pins the waits the scheduler computes: the interval after a
// success, doubling from 30s after temporary failures, from 5m (never less
// than the interval) after [LOGIN-DELAY], from the interval after failures
// that need a person, and never more than the cap.
func TestBackoff(t *testing.T) {
	p := Policy{Interval: 5 * time.Minute, MaxBackoff: 30 * time.Minute}
	fast := Policy{Interval: 20 * time.Millisecond, MaxBackoff: 30 * time.Minute}
	slow := Policy{Interval: 10 * time.Minute, MaxBackoff: time.Hour}
	m, s := time.Minute, time.Second
	tests := []struct {
		policy Policy
		kind   ErrorKind
		want   []time.Duration // after 1, 2, 3, ... failures in a row
	}{
		{p, KindNone, []time.Duration{5 * m}},
		{p, KindTemporary, []time.Duration{30 * s, m, 2 * m, 4 * m, 8 * m, 16 * m, 30 * m, 30 * m}},
		{p, KindInUse, []time.Duration{30 * s, m, 2 * m, 4 * m}},
		{p, KindLoginDelay, []time.Duration{5 * m, 10 * m, 20 * m, 30 * m, 30 * m}},
		{p, KindAuth, []time.Duration{5 * m, 10 * m, 20 * m, 30 * m}},
		{p, KindJournal, []time.Duration{5 * m, 10 * m, 20 * m, 30 * m}},
		{fast, KindNone, []time.Duration{20 * time.Millisecond}},
		{fast, KindTemporary, []time.Duration{20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond}},
		{fast, KindLoginDelay, []time.Duration{5 * m, 10 * m}},
		{slow, KindLoginDelay, []time.Duration{10 * m, 20 * m, 40 * m, time.Hour}},
		{Policy{}, KindNone, []time.Duration{5 * m}},
		{Policy{}, KindTemporary, []time.Duration{30 * s}},
		{Policy{Interval: time.Hour}, KindTemporary, []time.Duration{30 * s, m}},
		{Policy{Interval: time.Hour}, KindAuth, []time.Duration{time.Hour, time.Hour}}, // the cap is at least the interval
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%v/%s", tt.policy.Interval, tt.kind), func(t *testing.T) {
			for i, want := range tt.want {
				failures := i + 1
				if tt.kind == KindNone {
					failures = 0
				}
				if got := tt.policy.Backoff(tt.kind, failures); got != want {
					t.Errorf("after %d failures: %v, want %v", failures, got, want)
				}
			}
		})
	}
}

// TestJitter: waits spread over ±10% and no further.
func TestJitter(t *testing.T) {
	p := Policy{Interval: time.Minute, Jitter: DefaultJitter}
	for _, tt := range []struct {
		r    float64
		want time.Duration
	}{{0, 90 * time.Second}, {0.5, 100 * time.Second}, {0.75, 105 * time.Second}} {
		if got := p.jittered(100*time.Second, tt.r); got != tt.want {
			t.Errorf("jittered(100s, %v) = %v, want %v", tt.r, got, tt.want)
		}
	}
	if got := (Policy{Jitter: 0}).jittered(time.Minute, 0); got != time.Minute {
		t.Errorf("no jitter: %v", got)
	}
}

// TestClassify sorts errors by type through their wrappers, as the bridge
// returns them.
func TestClassify(t *testing.T) {
	login := func(err error) error {
		return &bridge.ConnectError{Proto: "pop3", Addr: "x:110", Op: "login", Err: err}
	}
	tests := []struct {
		err  error
		want ErrorKind
	}{
		{nil, KindNone},
		{login(&pop3.Error{Command: "PASS", Code: "LOGIN-DELAY", Text: "wait"}), KindLoginDelay},
		{login(&pop3.Error{Command: "PASS", Code: "IN-USE"}), KindInUse},
		{fmt.Errorf("cycle: %w", &pop3.Error{Command: "RETR", Code: "SYS/TEMP"}), KindTemporary},
		{&bridge.AuthError{Proto: "imap", Err: errors.New("NO")}, KindAuth},
		{fmt.Errorf("imap: APPEND: %w: %w", bridge.ErrOverQuota, errors.New("NO")), KindQuota},
		{&bridge.JournalError{Err: errors.New("disk full")}, KindJournal},
		{&state.LockedError{Path: "/j"}, KindJournal},
		{&bridge.ConnectError{Proto: "imap", Op: "tls", Err: x509.UnknownAuthorityError{}}, KindTLS},
		{&bridge.ConnectError{Proto: "pop3", Op: "login", Err: bridge.ErrInsecureAuth}, KindConfig},
		{&bridge.ConnectError{Proto: "pop3", Op: "password", Err: errors.New("command failed")}, KindConfig},
		{&bridge.ConnectError{Proto: "imap", Op: "access token", Err: errors.New("token command failed")}, KindConfig},
		{&bridge.ConnectError{Proto: "pop3", Op: "dial", Err: &net.OpError{Op: "dial", Err: errors.New("refused")}}, KindUnreachable},
		{&bridge.ConnectError{Proto: "pop3", Op: "dial", Err: context.Canceled}, KindCanceled},
		{errors.New("something no type explains"), KindTemporary},
		{context.DeadlineExceeded, KindTemporary},
		{&bridge.ConnectError{Proto: "imap", Op: "access token", Err: &secret.Error{Ref: secret.Ref{Kind: secret.Command}, Timeout: true, Err: errors.New("did not finish")}}, KindConfig},
	}
	for _, tt := range tests {
		if got := Classify(tt.err); got != tt.want {
			t.Errorf("Classify(%v) = %q, want %q", tt.err, got, tt.want)
		}
	}
}

// TestParseDuration accepts days, and refuses what is not a duration.
func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"7d": 7 * 24 * time.Hour, "1d12h": 36 * time.Hour, "36h": 36 * time.Hour, "5m": 5 * time.Minute,
		"20ms": 20 * time.Millisecond, "0d": 0, " 2d ": 48 * time.Hour,
	} {
		if got, err := ParseDuration(in); err != nil || got != want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, in := range []string{"", "d", "7", "soon", "-1h", "1d-2h", "x7d", "7dd"} {
		if got, err := ParseDuration(in); err == nil {
			t.Errorf("ParseDuration(%q) = %v, want an error", in, got)
		}
	}
	for d, want := range map[time.Duration]string{7 * 24 * time.Hour: "7d", 36 * time.Hour: "1d12h0m0s", 5 * time.Minute: "5m0s"} {
		if got := FormatDuration(d); got != want {
			t.Errorf("FormatDuration(%v) = %q, want %q", d, got, want)
		}
	}
}
