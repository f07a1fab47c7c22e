// Package pacer is pop2imap's one retry policy, in the manner of rclone's
// lib/pacer: a bounded number of further attempts, with waits that double
// up to a cap and never fall below a floor the server set. Whether an
// error is worth another attempt is errkind's to say, not the pacer's.
package pacer

import (
	"context"
	"time"
)

// MaxDelay caps the wait between two attempts.
const MaxDelay = time.Minute

// Pacer paces the attempts at one thing: at most Retries further
// attempts, with waits that start at the first delay and double up to
// MaxDelay, never shorter than Floor (a server's LOGIN-DELAY), and an end
// as soon as ctx is done. The engine retries sessions and APPENDs with
// it, batch retries accounts with it; the bridge daemon schedules whole
// cycles by its own Policy and runs each with no retries of the engine's.
type Pacer struct {
	Retries  int
	Floor    func() time.Duration // nil: none
	Attempts int                  // retries so far
	delay    time.Duration
}

// New returns a pacer for at most retries further attempts, the first
// after first.
func New(retries int, first time.Duration) *Pacer {
	return &Pacer{Retries: retries, delay: first}
}

// Left reports whether another attempt is allowed.
func (p *Pacer) Left() bool { return p.Attempts < p.Retries }

// Again waits before the next attempt and reports whether there is one: it
// is false once the retries are used up, and false with ctx.Err() when ctx
// ends during the wait.
func (p *Pacer) Again(ctx context.Context) (bool, error) {
	if p.Attempts >= p.Retries {
		return false, nil
	}
	p.Attempts++
	d := p.delay
	if p.Floor != nil {
		d = max(d, p.Floor())
	}
	p.delay = min(p.delay*2, MaxDelay)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return true, nil
}
