package daemon

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/pop2imap/pop2imap/internal/fleet"
)

// Options configure a Service. The zero value works: it logs nowhere, uses
// the real clock, and calls a cycle healthy for DefaultHealthIntervals.
type Options struct {
	Logger *slog.Logger
	// Clock is the scheduler's time; nil means the real clock. It is also
	// the clock of the delete-after policy (bridge.Config.Now).
	Clock Clock
	// Rand returns uniform numbers in [0, 1) for jitter; nil means
	// math/rand/v2.
	Rand func() float64
	// HealthIntervals is how many of its intervals an account may go
	// without a successful cycle before /healthz reports it; 0 means 3.
	HealthIntervals int
	// OnCycle, when set, is called after every cycle of every account,
	// from that account's goroutine.
	OnCycle func(Report)
	// Advice, when set, says what to do about a failed cycle's error; the
	// status page shows it beside the error.
	Advice func(error) string
	// Runner runs every cycle, within its limits on accounts at a time and
	// connections per host; nil means a runner with fleet's defaults.
	Runner *fleet.Runner
}

// Service runs one loop per account, each in its own goroutine, so that a
// broken account never holds up the others. Every cycle runs through one
// fleet.Runner, so that however many accounts are due at once, the caps on
// accounts at a time and connections per host hold.
type Service struct {
	opts    Options
	metrics *metrics

	mu       sync.Mutex
	loops    map[string]*loopHandle
	stopping map[*loopHandle]bool
	wg       sync.WaitGroup
}

type loopHandle struct {
	loop *accountLoop
	stop chan struct{} // closed to stop the loop after its current cycle
	done chan struct{} // closed when the loop has ended and closed its journal
}

// New returns a Service with no accounts; Apply starts them.
func New(opts Options) *Service {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opts.Clock == nil {
		opts.Clock = realClock{}
	}
	if opts.Rand == nil {
		opts.Rand = rand.Float64
	}
	if opts.HealthIntervals <= 0 {
		opts.HealthIntervals = DefaultHealthIntervals
	}
	if opts.Runner == nil {
		opts.Runner = fleet.New(0, 0)
	}
	return &Service{opts: opts, metrics: newMetrics(), loops: map[string]*loopHandle{}, stopping: map[*loopHandle]bool{}}
}

// Apply makes the running accounts those given. An account whose settings
// did not change (same Fingerprint) keeps running untouched. The others are
// stopped after their current cycle, and their replacements start as soon
// as the old loop has released the journal. The loops run until ctx is
// cancelled; Wait waits for them.
func (s *Service) Apply(ctx context.Context, accounts []Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	want := make(map[string]Account, len(accounts))
	for _, a := range accounts {
		want[a.Name] = a
	}
	for name, h := range s.loops {
		a, ok := want[name]
		if ok && a.Fingerprint != "" && a.Fingerprint == h.loop.acct.Fingerprint {
			delete(want, name)
			continue
		}
		close(h.stop)
		s.stopping[h] = true
		delete(s.loops, name)
	}
	for _, a := range accounts {
		if _, ok := want[a.Name]; !ok {
			continue
		}
		// Wait for every stopping loop that holds this account's name or
		// journal: the journal is locked until the old loop closes it.
		var prev []*loopHandle
		for h := range s.stopping {
			if h.loop.acct.Name == a.Name || h.loop.acct.Journal == a.Journal {
				prev = append(prev, h)
			}
		}
		l := newLoop(s, a)
		for _, h := range prev {
			if h.loop.acct.Name == a.Name {
				l.status.carry(h.loop.status)
			}
		}
		h := &loopHandle{loop: l, stop: make(chan struct{}), done: make(chan struct{})}
		s.loops[a.Name] = h
		s.metrics.add(a.Name)
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer s.retire(h)
			for _, p := range prev {
				select {
				case <-p.done:
				case <-ctx.Done():
					return
				}
			}
			l.run(ctx, h.stop)
		}()
	}
}

// retire marks a loop as ended, after it closed its journal, and drops its
// metrics when a reload removed its account.
func (s *Service) retire(h *loopHandle) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.stopping, h)
	if _, ok := s.loops[h.loop.acct.Name]; !ok {
		s.metrics.forget(h.loop.acct.Name)
	}
	close(h.done)
}

// Wait returns when every loop has ended, which happens once the ctx given
// to Apply is cancelled and each loop has finished its current messages.
func (s *Service) Wait() {
	s.wg.Wait()
}

// RunOnce runs one cycle of each account, all at once, and returns their
// reports in the order given. It uses no loops and leaves none running.
func (s *Service) RunOnce(ctx context.Context, accounts []Account) []Report {
	reports := make([]Report, len(accounts))
	var wg sync.WaitGroup
	for i, a := range accounts {
		s.metrics.add(a.Name)
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := newLoop(s, a)
			defer l.close()
			reports[i] = l.cycle(ctx)
		}()
	}
	wg.Wait()
	return reports
}

// accountStatus is what the health check knows of one account.
type accountStatus struct {
	mu          sync.Mutex
	interval    time.Duration
	started     time.Time
	lastSuccess time.Time
	failures    int
	kind        ErrorKind

	// What the status page shows besides.
	lastEnd      time.Time // when the last cycle ended; zero before the first
	lastAppended int64     // what the last cycle forwarded
	forwarded    int64     // what every cycle since the start forwarded
	nextRun      time.Time
	lastErr      string    // the last error, "" when there was none
	lastErrAt    time.Time // when it ended its cycle
	lastAdvice   string    // what to do about it
}

func (st *accountStatus) update(r *Report, next time.Time, advice func(error) string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.failures, st.kind = r.Failures, r.Kind
	st.lastEnd = r.Start.Add(r.Duration)
	st.lastAppended = r.Appended + r.Recovered
	st.forwarded += r.Appended + r.Recovered
	st.nextRun = next
	if r.Err == nil {
		st.lastSuccess = st.lastEnd
		return
	}
	st.lastErr, st.lastErrAt, st.lastAdvice = r.Err.Error(), st.lastEnd, ""
	if advice != nil {
		st.lastAdvice = advice(r.Err)
	}
}

// carry keeps what the status page shows of the loop an account replaces.
func (st *accountStatus) carry(old *accountStatus) {
	old.mu.Lock()
	defer old.mu.Unlock()
	st.lastSuccess = old.lastSuccess
	st.lastEnd, st.lastAppended, st.forwarded = old.lastEnd, old.lastAppended, old.forwarded
	st.lastErr, st.lastErrAt, st.lastAdvice = old.lastErr, old.lastErrAt, old.lastAdvice
}

// Health reports whether every account is well: its last cycle succeeded
// (or none has ended yet), or its last success, or its start when it has
// none, is less than HealthIntervals of its intervals ago. The text names
// each account that is not, in one line each.
func (s *Service) Health() (ok bool, text string) {
	now := s.opts.Clock.Now()
	s.mu.Lock()
	names := make([]string, 0, len(s.loops))
	for name := range s.loops {
		names = append(names, name)
	}
	sort.Strings(names)
	var bad []string
	for _, name := range names {
		st := s.loops[name].loop.status
		st.mu.Lock()
		ref, since := st.lastSuccess, "last success"
		if ref.IsZero() {
			ref, since = st.started, "started"
		}
		limit := time.Duration(s.opts.HealthIntervals) * st.interval
		if st.failures > 0 && now.Sub(ref) > limit {
			bad = append(bad, fmt.Sprintf("%s: %d failed cycles in a row (%s), %s %s ago",
				name, st.failures, st.kind, since, now.Sub(ref).Round(time.Second)))
		}
		st.mu.Unlock()
	}
	s.mu.Unlock()
	if len(bad) > 0 {
		return false, "unhealthy: " + strings.Join(bad, "\n")
	}
	if len(names) == 1 {
		return true, "ok: 1 account"
	}
	return true, fmt.Sprintf("ok: %d accounts", len(names))
}

// Handler serves / (a status page for people), /metrics (Prometheus) and
// /healthz (200 when Health is ok, else 503, with a short text).
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /{$}", s.serveStatus)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		ok, text := s.Health()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		io.WriteString(w, text+"\n")
	})
	return mux
}
