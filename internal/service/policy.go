package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/oauthtoken"
	"github.com/pop2imap/pop2imap/internal/secret"
	"github.com/pop2imap/pop2imap/pop3"
	"github.com/pop2imap/pop2imap/state"
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
// also the "kind" label of the errors metric.
type ErrorKind string

const (
	// KindNone is a cycle that succeeded.
	KindNone ErrorKind = ""
	// KindTemporary is a failure that usually mends itself: a dropped or
	// refused connection, a timeout, [SYS/TEMP], an IMAP server that is
	// unavailable.
	KindTemporary ErrorKind = "temporary"
	// KindInUse is POP3 [IN-USE]: another session holds the mailbox.
	KindInUse ErrorKind = "in-use"
	// KindLoginDelay is POP3 [LOGIN-DELAY]: we logged in too soon.
	KindLoginDelay ErrorKind = "login-delay"
	// KindAuth is a login the server refused.
	KindAuth ErrorKind = "auth"
	// KindTLS is a certificate that does not verify.
	KindTLS ErrorKind = "tls"
	// KindQuota is an IMAP account over its quota.
	KindQuota ErrorKind = "quota"
	// KindJournal is a journal that cannot be opened or written.
	KindJournal ErrorKind = "journal"
	// KindConfig is a setting that can never work (a password that would
	// go unencrypted, a password command that fails).
	KindConfig ErrorKind = "config"
)

// Persistent reports whether the failure needs a person: retrying the same
// thing soon will not help, so the scheduler waits longer from the start.
func (k ErrorKind) Persistent() bool {
	switch k {
	case KindAuth, KindTLS, KindQuota, KindJournal, KindConfig:
		return true
	}
	return false
}

// Classify sorts a cycle's error. It looks at types through the chain of
// wrapped errors, never at the text.
func Classify(err error) ErrorKind {
	if err == nil {
		return KindNone
	}
	var (
		perr   *pop3.Error
		aerr   *bridge.AuthError
		cerr   *bridge.ConnectError
		jerr   *bridge.JournalError
		lerr   *state.LockedError
		corr   *state.CorruptError
		uaerr  x509.UnknownAuthorityError
		hnerr  x509.HostnameError
		cierr  x509.CertificateInvalidError
		tlsver *tls.CertificateVerificationError
		oerr   *oauthtoken.Error
		serr   *secret.Error
	)
	switch {
	case errors.As(err, &perr) && perr.Code == "LOGIN-DELAY":
		return KindLoginDelay
	case errors.As(err, &perr) && perr.Code == "IN-USE":
		return KindInUse
	case errors.As(err, &aerr):
		return KindAuth
	case errors.As(err, &oerr) && oerr.NeedsLogin():
		// A refresh token revoked, a client id unknown: only a new
		// 'pop2imap login' helps.
		return KindAuth
	case errors.As(err, &oerr):
		// A token file that cannot be read or written, a token endpoint
		// that cannot be reached: retried at the slow, persistent pace,
		// not in a storm against the authorization server.
		return KindConfig
	case errors.Is(err, bridge.ErrOverQuota):
		return KindQuota
	case errors.As(err, &jerr), errors.As(err, &lerr), errors.As(err, &corr):
		return KindJournal
	case errors.As(err, &uaerr), errors.As(err, &hnerr), errors.As(err, &cierr), errors.As(err, &tlsver):
		return KindTLS
	case errors.Is(err, bridge.ErrInsecureAuth):
		return KindConfig
	case errors.As(err, &cerr) && cerr.Op == "password":
		return KindConfig
	case errors.As(err, &serr) && !errors.Is(err, context.Canceled):
		// A password or token command that fails or hangs, however the
		// error reached us (an OAuth2 token's is not Op "password").
		return KindConfig
	}
	return KindTemporary
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
