// Package fleet runs many accounts at once within two limits: how many
// accounts run at a time (jobs), and how many connections are open to any
// one host, POP3 and IMAP together, retries and recovery included. The
// bridge daemon and batch run their accounts through it.
//
// Before an account runs, its whole connection budget is reserved at
// once, on every host it uses: a POP3 connection, one IMAP connection to
// append on (the session checks the folder on it first), and one more for
// the connection that indexes a folder holding mail. An account never
// waits for a connection while holding others that another account
// needs, so the caps cannot deadlock, and a connection is only ever opened
// within its account's reservation (bridge.Endpoint.Gate), so they cannot
// be exceeded.
package fleet

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/errkind"
)

// Defaults of the limits.
const (
	DefaultJobs            = 8
	DefaultMaxConnsPerHost = 16
	// Memory is the budget of message bytes in memory that every
	// account of a runner shares (bridge.Config.Memory), however many
	// run at once; larger messages are spooled to disk.
	Memory = 32 << 20
)

// Need is what one account asks of the runner.
type Need struct {
	POP3, IMAP *bridge.Endpoint // nil: that side is not used
	// Appenders is how many IMAP connections the account would like to
	// append on; one more is reserved beside them for the connection that
	// indexes a folder holding mail. 0 means that it only logs in (a
	// check, a STAT): one IMAP connection.
	Appenders int
}

// Grant is what the runner gave an account: its endpoints, whose every
// connection is admitted by the account's reservation, and how many
// connections it may append on (at least one when it asked for any).
type Grant struct {
	POP3, IMAP *bridge.Endpoint
	Appenders  int
}

// CapError is an account that needs more connections to one host than
// the cap allows, so that it could never run.
type CapError struct {
	Host      string
	Need, Cap int
}

func (e *CapError) Error() string {
	return fmt.Sprintf("an account needs %d connections to %s at once, over the cap of %d per host (raise --max-conns-per-host to at least %d)",
		e.Need, e.Host, e.Cap, e.Need)
}

// ErrorKind is errkind.Usage: the cap is a flag.
func (e *CapError) ErrorKind() errkind.Kind { return errkind.Usage }

// Runner runs accounts within its limits. Its methods may be called from
// many goroutines.
type Runner struct {
	jobs    chan struct{}
	maxConn int
	memory  *bridge.MemoryBudget

	mu       sync.Mutex
	changed  chan struct{} // closed and replaced whenever slots are given back
	reserved map[string]int
	open     map[string]int // connections open now, per host
	peak     map[string]int // the most ever open at once, per host
	inDo     int            // accounts waiting or running
}

// New returns a runner for jobs accounts at a time and maxConnsPerHost
// connections per host; zero or less means the defaults.
func New(jobs, maxConnsPerHost int) *Runner {
	if jobs <= 0 {
		jobs = DefaultJobs
	}
	if maxConnsPerHost <= 0 {
		maxConnsPerHost = DefaultMaxConnsPerHost
	}
	return &Runner{
		jobs: make(chan struct{}, jobs), maxConn: maxConnsPerHost, memory: bridge.NewMemoryBudget(Memory),
		changed:  make(chan struct{}),
		reserved: map[string]int{}, open: map[string]int{}, peak: map[string]int{},
	}
}

// Memory is the budget of message bytes in memory that the runner's
// accounts share: set it as their bridge.Config.Memory.
func (r *Runner) Memory() *bridge.MemoryBudget { return r.memory }

// Jobs is how many accounts run at a time.
func (r *Runner) Jobs() int { return cap(r.jobs) }

// MaxConnsPerHost is the cap on connections to one host.
func (r *Runner) MaxConnsPerHost() int { return r.maxConn }

// Peak returns, per host, the most connections that were ever open at
// once.
func (r *Runner) Peak() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := make(map[string]int, len(r.peak))
	for h, n := range r.peak {
		m[h] = n
	}
	return m
}

// HostKey is the name under which a server's connections are counted:
// its host in lower case, whatever the port, so that one server's POP3
// and IMAP connections count together.
func HostKey(ep *bridge.Endpoint) string {
	return strings.ToLower(strings.TrimSuffix(ep.Host(), "."))
}

// Check returns a *CapError when need could never run under the cap.
func (r *Runner) Check(need Need) error {
	for host, n := range need.minimum() {
		if n > r.maxConn {
			return &CapError{Host: host, Need: n, Cap: r.maxConn}
		}
	}
	return nil
}

// minimum is the fewest connections per host the account needs at once.
func (n Need) minimum() map[string]int {
	m := map[string]int{}
	if n.POP3 != nil {
		m[HostKey(n.POP3)]++
	}
	if n.IMAP != nil {
		m[HostKey(n.IMAP)]++ // a check's login, or the folder index
		if n.Appenders > 0 {
			m[HostKey(n.IMAP)]++ // the first appender, which checks the folder
		}
	}
	return m
}

// Do waits for a job slot and for the account's connections to fit under
// the caps, then calls run with the grant. The reservation is held until
// run returns. Do returns run's error, ctx.Err() when ctx ends while it
// waits, or a *CapError when the account can never fit.
func (r *Runner) Do(ctx context.Context, need Need, run func(context.Context, Grant) error) error {
	if err := r.Check(need); err != nil {
		return err
	}
	r.mu.Lock()
	r.inDo++
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		r.inDo--
		r.mu.Unlock()
	}()

	select {
	case r.jobs <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-r.jobs }()

	l, err := r.reserve(ctx, need)
	if err != nil {
		return err
	}
	defer l.end()
	g := Grant{Appenders: l.appenders}
	if need.POP3 != nil {
		g.POP3 = l.endpoint(need.POP3)
	}
	if need.IMAP != nil {
		g.IMAP = l.endpoint(need.IMAP)
	}
	return run(ctx, g)
}

// reserve waits until the account's minimum fits on every host at once,
// takes it, and adds the appending connections its fair share allows.
func (r *Runner) reserve(ctx context.Context, need Need) (*lease, error) {
	min := need.minimum()
	for {
		r.mu.Lock()
		fits := true
		for host, n := range min {
			if r.reserved[host]+n > r.maxConn {
				fits = false
				break
			}
		}
		if fits {
			l := &lease{r: r, slots: min, free: map[string]int{}, wake: make(chan struct{})}
			for host, n := range min {
				r.reserved[host] += n
			}
			if need.IMAP != nil && need.Appenders > 0 {
				l.appenders = 1 + r.extra(HostKey(need.IMAP), min, need.Appenders-1)
			}
			for host, n := range l.slots {
				l.free[host] = n
			}
			r.mu.Unlock()
			return l, nil
		}
		wait := r.changed
		r.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// extra takes up to want more connections to host for appending: what
// the cap leaves, but no more than a fair share of it, the cap divided by
// the accounts that are running or waiting (at most jobs of them), so
// that the first account of a batch does not take what the next ones
// need. r.mu is held.
func (r *Runner) extra(host string, min map[string]int, want int) int {
	share := r.maxConn / max(1, minInt(cap(r.jobs), r.inDo))
	n := minInt(want, r.maxConn-r.reserved[host], share-min[host])
	if n <= 0 {
		return 0
	}
	r.reserved[host] += n
	min[host] += n
	return n
}

func minInt(a int, b ...int) int {
	for _, x := range b {
		a = min(a, x)
	}
	return a
}

// release gives n reserved slots on host back.
func (r *Runner) release(slots map[string]int) {
	r.mu.Lock()
	for host, n := range slots {
		r.reserved[host] -= n
	}
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *Runner) opened(host string) {
	r.mu.Lock()
	r.open[host]++
	r.peak[host] = max(r.peak[host], r.open[host])
	r.mu.Unlock()
}

func (r *Runner) closed(host string) {
	r.mu.Lock()
	r.open[host]--
	r.mu.Unlock()
}

// lease is one account's reservation: slots per host, of which free are
// not in use by an open connection.
type lease struct {
	r         *Runner
	appenders int
	slots     map[string]int

	mu   sync.Mutex
	free map[string]int
	wake chan struct{} // closed and replaced whenever a slot is given back
}

// endpoint returns a copy of ep whose connections are admitted by the
// lease.
func (l *lease) endpoint(ep *bridge.Endpoint) *bridge.Endpoint {
	c := *ep
	c.Gate = &gate{l: l, host: HostKey(ep)}
	return &c
}

// end gives the reservation back. Connections the account left open
// still count against the host until they close; the bridge closes them
// all before Migrator.Run returns.
func (l *lease) end() { l.r.release(l.slots) }

// gate admits one account's connections to one host within its lease. A
// connection waits only for another of the same account to close, never
// for another account.
type gate struct {
	l    *lease
	host string
}

func (g *gate) Acquire(ctx context.Context) (func(), error) {
	l := g.l
	for {
		l.mu.Lock()
		if l.free[g.host] > 0 {
			l.free[g.host]--
			l.mu.Unlock()
			l.r.opened(g.host)
			var once sync.Once
			return func() { once.Do(func() { g.put() }) }, nil
		}
		wait := l.wake
		l.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

func (g *gate) put() {
	g.l.r.closed(g.host)
	l := g.l
	l.mu.Lock()
	l.free[g.host]++
	close(l.wake)
	l.wake = make(chan struct{})
	l.mu.Unlock()
}
