package bridge

import (
	"context"
	"time"
)

// maxRetryDelay caps the wait between two attempts within a run.
const maxRetryDelay = time.Minute

// pacer is the engine's one retry policy, in the manner of rclone's
// lib/pacer: at most retries further attempts, with waits that start at
// first and double up to maxRetryDelay, never shorter than a floor the
// server set (LOGIN-DELAY), and an end as soon as ctx is done. Deciding
// whether an error is worth another attempt is the caller's (errkind).
// The bridge daemon schedules whole cycles by its own Policy, which runs
// each cycle with no retries of the engine's.
type pacer struct {
	retries  int
	delay    time.Duration
	floor    func() time.Duration // nil: none
	attempts int                  // retries so far
}

func newPacer(retries int, first time.Duration) *pacer {
	return &pacer{retries: retries, delay: first}
}

// again waits before the next attempt and reports whether there is one: it
// is false once the retries are used up, and false with ctx.Err() when ctx
// ends during the wait.
func (p *pacer) again(ctx context.Context) (bool, error) {
	if p.attempts >= p.retries {
		return false, nil
	}
	p.attempts++
	d := p.delay
	if p.floor != nil {
		d = max(d, p.floor())
	}
	p.delay = min(p.delay*2, maxRetryDelay)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
		return false, ctx.Err()
	}
	return true, nil
}
