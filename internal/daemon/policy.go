package daemon

import (
	"time"

	"github.com/pop2imap/pop2imap/internal/errkind"
)

// Defaults of a Policy's zero fields.
const (
	DefaultInterval        = 5 * time.Minute
	DefaultMaxBackoff      = 30 * time.Minute
	DefaultJitter          = 0.1
	DefaultRetryMin        = 30 * time.Second
	DefaultLoginDelay      = 5 * time.Minute
	DefaultHealthIntervals = 3
)

// Policy says when an account's next cycle runs.
type Policy struct {
	// Interval is the wait after a successful cycle; 0 means 5m.
	Interval time.Duration
	// MaxBackoff caps the wait after failures; 0 means 30m, and it is never
	// less than Interval.
	MaxBackoff time.Duration
	// Jitter spreads every wait uniformly over ±Jitter of its length, so
	// that accounts started together do not poll together. 0 means none;
	// the bridge uses DefaultJitter.
	Jitter float64
	// RetryMin is the first wait after a temporary failure, doubled at each
	// further failure; 0 means the smaller of Interval and 30s.
	RetryMin time.Duration
	// LoginDelay is the first wait after the server answered [LOGIN-DELAY]
	// (we log in more often than it allows); 0 means 5m. It is never less
	// than Interval.
	LoginDelay time.Duration
}

func (p Policy) withDefaults() Policy {
	if p.Interval <= 0 {
		p.Interval = DefaultInterval
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = DefaultMaxBackoff
	}
	p.MaxBackoff = max(p.MaxBackoff, p.Interval)
	if p.RetryMin <= 0 {
		p.RetryMin = min(p.Interval, DefaultRetryMin)
	}
	if p.LoginDelay <= 0 {
		p.LoginDelay = DefaultLoginDelay
	}
	p.LoginDelay = max(p.LoginDelay, p.Interval)
	p.Jitter = min(max(p.Jitter, 0), 0.5)
	return p
}

// ErrorKind sorts a failed cycle by what the scheduler does about it. It is
// also the "kind" label of the errors metric. Package errkind decides it.
type ErrorKind = errkind.Kind

// The kinds the scheduler tells apart; errkind documents each.
const (
	KindNone        = errkind.None
	KindTemporary   = errkind.Temporary
	KindThrottled   = errkind.Throttled
	KindInUse       = errkind.InUse
	KindLoginDelay  = errkind.LoginDelay
	KindUnreachable = errkind.Unreachable
	KindAuth        = errkind.Auth
	KindTLS         = errkind.TLS
	KindQuota       = errkind.Quota
	KindJournal     = errkind.Journal
	KindProtocol    = errkind.Protocol
	KindToken       = errkind.Token
	KindConfig      = errkind.Config
	KindUsage       = errkind.Usage
	KindUnknown     = errkind.Unknown
	KindCanceled    = errkind.Canceled
)

// Classify sorts a cycle's error. An error no type explains counts as
// temporary: the scheduler retries it soon rather than give up.
func Classify(err error) ErrorKind {
	k := errkind.Of(err)
	if k == errkind.Unknown {
		return KindTemporary
	}
	return k
}

// Backoff returns the wait before the next cycle, without jitter, after a
// cycle that ended with kind, failures being the number of failed cycles in
// a row (0 after a success):
//
//   - success: Interval;
//   - temporary, in-use: RetryMin, doubled per further failure;
//   - login-delay: LoginDelay (at least Interval), doubled per further
//     failure, because the server told us to come back less often;
//   - persistent (auth, tls, quota, journal, config): Interval (at least
//     RetryMin), doubled per further failure, so that a wrong password does
//     not hammer the server (some lock an account after a few failures);
//
// and never more than MaxBackoff.
func (p Policy) Backoff(kind ErrorKind, failures int) time.Duration {
	p = p.withDefaults()
	if kind == KindNone || failures <= 0 {
		return p.Interval
	}
	base := p.RetryMin
	switch {
	case kind == KindLoginDelay:
		base = p.LoginDelay
	case kind.Persistent():
		base = max(p.Interval, p.RetryMin)
	}
	d := base
	for i := 1; i < failures && d < p.MaxBackoff; i++ {
		d *= 2
	}
	return min(d, p.MaxBackoff)
}

// jittered spreads d over ±Jitter of its length; r is uniform in [0, 1).
func (p Policy) jittered(d time.Duration, r float64) time.Duration {
	p = p.withDefaults()
	return time.Duration(float64(d) * (1 + p.Jitter*(2*r-1)))
}
