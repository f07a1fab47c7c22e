package daemon

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/fleet"
	"github.com/pop2imap/pop2imap/state"
)

// Report is what one cycle of one account did.
type Report struct {
	Account  string
	Start    time.Time
	Duration time.Duration

	Listed, Appended, Recovered, Adopted, Deleted, LeftBehind, Baselined, Bytes int64

	// Err is why the cycle failed, nil when it succeeded; Kind sorts it.
	Err  error
	Kind ErrorKind
	// Failures counts the failed cycles in a row, this one included.
	Failures int
	// Backoff is the wait the policy chose before the next cycle, and Next
	// the same with jitter; both are zero when Stopped.
	Backoff, Next time.Duration
	// Stopped means the cycle ended because the bridge is shutting down.
	Stopped bool
}

// accountLoop polls one account until it is told to stop. Only its own
// goroutine touches it, except status, which the health check reads.
type accountLoop struct {
	acct    Account
	svc     *Service
	log     *slog.Logger
	journal *state.Journal
	// failures counts failed cycles in a row.
	failures int
	// succeeded is set by the first successful cycle; from then on
	// Account.Baseline no longer applies.
	succeeded bool
	status    *accountStatus
	// loginDelay is the server's LOGIN-DELAY when it is longer than the
	// interval: no cycle starts sooner after the last one began.
	loginDelay time.Duration
}

func newLoop(s *Service, acct Account) *accountLoop {
	acct.Policy = acct.Policy.withDefaults()
	return &accountLoop{
		acct:   acct,
		svc:    s,
		log:    s.opts.Logger.With("account", acct.Name),
		status: &accountStatus{interval: acct.Policy.Interval, started: s.opts.Clock.Now()},
	}
}

// run runs cycles until ctx is cancelled (shutdown: the current cycle
// finishes its current messages and records them) or stop is closed (reload:
// the current cycle runs to its end).
func (l *accountLoop) run(ctx context.Context, stop <-chan struct{}) {
	defer l.close()
	a := &l.acct
	l.log.Info("account started", "pop3", a.POP3.Addr, "pop3_user", a.POP3.Username,
		"imap", a.IMAP.Addr, "imap_user", a.IMAP.Username, "folder", a.Bridge.Folder,
		"delete", a.DeletePolicy(), "journal", a.Journal, "interval", a.Policy.Interval, "baseline", a.Baseline)
	for {
		r := l.cycle(ctx)
		if r.Stopped {
			return
		}
		select {
		case <-stop:
			l.log.Info("account stopped for a reload")
			return
		default:
		}
		select {
		case <-ctx.Done():
			return
		case <-stop:
			l.log.Info("account stopped for a reload")
			return
		case <-l.svc.opts.Clock.After(r.Next):
		}
	}
}

func (l *accountLoop) close() {
	if l.journal != nil {
		if err := l.journal.Close(); err != nil {
			l.log.Error("closing the journal", "journal", l.acct.Journal, "err", err)
		}
		l.journal = nil
	}
}

// cycle runs the pipeline once, then counts, logs and schedules.
func (l *accountLoop) cycle(ctx context.Context) Report {
	clock := l.svc.opts.Clock
	r := Report{Account: l.acct.Name, Start: clock.Now()}
	stats := &bridge.Stats{}
	err := l.runPipeline(ctx, stats)
	r.Duration = clock.Now().Sub(r.Start)
	r.Listed, r.Appended, r.Recovered = stats.Listed.Load(), stats.Appended.Load(), stats.Recovered.Load()
	r.Adopted = stats.Adopted.Load()
	r.Deleted, r.LeftBehind, r.Baselined, r.Bytes = stats.Deleted.Load(), stats.LeftBehind.Load(), stats.Baselined.Load(), stats.Bytes.Load()
	l.svc.metrics.countCycle(l.acct.Name, &r)

	if ctx.Err() != nil {
		// Shutting down. The pipeline finished the messages it had
		// retrieved and recorded them; whatever it says now is about
		// being cut short, not about the account.
		r.Stopped = true
		attrs := r.counters()
		if err != nil && !errors.Is(err, context.Canceled) {
			attrs = append(attrs, "err", err)
		}
		l.log.Info("cycle interrupted; stopping", attrs...)
		l.report(r)
		return r
	}

	r.Err, r.Kind = err, Classify(err)
	if err == nil {
		l.failures = 0
		l.succeeded = true
	} else {
		l.failures++
	}
	r.Failures = l.failures
	l.noteLoginDelay(time.Duration(stats.LoginDelay.Load()))
	r.Backoff = max(l.acct.Policy.Backoff(r.Kind, l.failures), l.loginDelay)
	r.Next = l.acct.Policy.jittered(r.Backoff, l.svc.opts.Rand())
	if l.loginDelay > 0 {
		// Jitter may shorten the wait, but never below what the server
		// allows; the cycle's own duration only adds to the gap.
		r.Next = max(r.Next, l.loginDelay)
	}
	next := clock.Now().Add(r.Next)
	l.status.update(&r, next, l.svc.opts.Advice)
	l.svc.metrics.schedule(l.acct.Name, &r, next)

	attrs := append(r.counters(), "duration", r.Duration.Round(time.Millisecond),
		"next_run", next.Format("2006-01-02T15:04:05.000Z07:00"), "next_in", roundForLog(r.Next))
	switch {
	case err == nil:
		l.log.Info("cycle done", attrs...)
	case r.Kind.Persistent():
		l.log.Error("cycle failed; needs attention", append(attrs, "kind", string(r.Kind), "failures", r.Failures, "err", err)...)
	default:
		l.log.Warn("cycle failed; will retry", append(attrs, "kind", string(r.Kind), "failures", r.Failures, "err", err)...)
	}
	l.report(r)
	return r
}

// noteLoginDelay takes the LOGIN-DELAY a cycle read from the server (0 when
// it announced none or the cycle did not get that far, which keeps the last
// one known), and logs once each time it raises the interval.
func (l *accountLoop) noteLoginDelay(d time.Duration) {
	if d <= 0 {
		return
	}
	effective := time.Duration(0)
	if d > l.acct.Policy.Interval {
		effective = d
	}
	if effective == l.loginDelay {
		return
	}
	l.loginDelay = effective
	if effective > 0 {
		l.log.Warn("the POP3 server allows a login only every LOGIN-DELAY; the interval is raised to it",
			"login_delay", effective, "interval", l.acct.Policy.Interval)
	}
}

// roundForLog keeps a wait readable: whole seconds, or milliseconds below
// one second (tests run with tiny intervals).
func roundForLog(d time.Duration) time.Duration {
	if d < time.Second {
		return d.Round(time.Millisecond)
	}
	return d.Round(time.Second)
}

func (l *accountLoop) report(r Report) {
	if l.svc.opts.OnCycle != nil {
		l.svc.opts.OnCycle(r)
	}
}

// counters are the summary fields of a cycle's log line.
func (r *Report) counters() []any {
	attrs := []any{"listed", r.Listed, "appended", r.Appended}
	if r.Recovered > 0 {
		attrs = append(attrs, "recovered", r.Recovered)
	}
	if r.Adopted > 0 {
		attrs = append(attrs, "adopted", r.Adopted)
	}
	attrs = append(attrs, "deleted", r.Deleted, "left_behind", r.LeftBehind)
	if r.Baselined > 0 {
		attrs = append(attrs, "baselined", r.Baselined)
	}
	return append(attrs, "bytes", r.Bytes)
}

// runPipeline runs the bridge once, with no retries of its own: the
// scheduler owns every retry, so each failure is counted, logged and backed
// off from. A journal that exists is opened at once; a new one is created
// only once both logins have succeeded, so that an account whose host or
// password is mistyped leaves no journal behind.
func (l *accountLoop) runPipeline(ctx context.Context, stats *bridge.Stats) error {
	if _, err := os.Stat(l.acct.Journal); l.journal == nil && err == nil {
		j, err := state.Open(l.acct.Journal)
		if err != nil {
			return err
		}
		l.journal = j
		if r := j.Repaired(); r != nil {
			l.log.Warn(r.String())
		}
	}
	cfg := l.acct.Bridge
	cfg.Retries = -1
	cfg.DryRun = false
	cfg.Now = l.svc.opts.Clock.Now
	// Baseline only a journal that records nothing yet. A bridge restarted
	// with --baseline must not mark as done the mail that arrived while it
	// was stopped.
	cfg.Baseline = l.acct.Baseline && !l.succeeded && (l.journal == nil || l.journal.Len() == 0)
	appenders := cfg.IMAPConns
	if appenders <= 0 {
		appenders = bridge.DefaultIMAPConns
	}
	need := fleet.Need{POP3: l.acct.POP3, IMAP: l.acct.IMAP, Appenders: appenders}
	return l.svc.opts.Runner.Do(ctx, need, func(ctx context.Context, g fleet.Grant) error {
		cfg.IMAPConns = g.Appenders
		cfg.Memory = l.svc.opts.Runner.Memory()
		return l.migrate(ctx, cfg, g, stats)
	})
}

// migrate runs the pipeline once on the endpoints the runner granted.
func (l *accountLoop) migrate(ctx context.Context, cfg bridge.Config, g fleet.Grant, stats *bridge.Stats) error {
	m := &bridge.Migrator{
		Config:  cfg,
		POP3:    g.POP3,
		IMAP:    g.IMAP,
		Index:   g.Index,
		Journal: l.journal,
		OpenJournal: func() (*state.Journal, error) {
			j, err := state.Open(l.acct.Journal)
			if err == nil {
				l.journal = j
			}
			return j, err
		},
		Stats:   stats,
		OnEvent: func(e bridge.Event) { e.Log(l.log) },
	}
	err := m.Run(ctx)
	var jerr *bridge.JournalError
	if errors.As(err, &jerr) {
		// A journal that failed a write refuses all further writes;
		// reopen it next time, which also repairs a torn tail.
		l.close()
	}
	return err
}
