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
	"sync/atomic"

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

	reserved *hostSlots   // connections reserved by the accounts running
	inDo     atomic.Int64 // accounts waiting or running

	mu   sync.Mutex
	open map[string]int // connections open now, per host
	peak map[string]int // the most ever open at once, per host
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
		reserved: newHostSlots(func(string) int { return maxConnsPerHost }),
		open:     map[string]int{}, peak: map[string]int{},
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
	r.inDo.Add(1)
	defer r.inDo.Add(-1)

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
	slots := need.minimum()
	appenders := 0
	err := r.reserved.take(ctx, slots, func() {
		if need.IMAP != nil && need.Appenders > 0 {
			host := HostKey(need.IMAP)
			extra := r.extra(host, slots[host], need.Appenders-1)
			r.reserved.add(host, extra)
			slots[host] += extra
			appenders = 1 + extra
		}
	})
	if err != nil {
		return nil, err
	}
	l := &lease{r: r, appenders: appenders, slots: slots}
	l.open = newHostSlots(func(host string) int { return l.slots[host] })
	return l, nil
}

// extra is how many more connections to host an account that holds held
// of them may take for appending, up to want: what the cap leaves, but no
// more than a fair share of it, the cap divided by the accounts that are
// running or waiting (at most jobs of them), so that the first account of
// a batch does not take what the next ones need. r.reserved.mu is held.
func (r *Runner) extra(host string, held, want int) int {
	share := r.maxConn / max(1, minInt(cap(r.jobs), int(r.inDo.Load())))
	return max(0, minInt(want, r.reserved.room(host), share-held))
}

func minInt(a int, b ...int) int {
	for _, x := range b {
		a = min(a, x)
	}
	return a
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

// lease is one account's reservation: slots per host, and the account's
// connections open on them.
type lease struct {
	r         *Runner
	appenders int
	slots     map[string]int
	open      *hostSlots // limited to slots
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
func (l *lease) end() { l.r.reserved.give(l.slots) }

// gate admits one account's connections to one host within its lease. A
// connection waits only for another of the same account to close, never
// for another account.
type gate struct {
	l    *lease
	host string
}

func (g *gate) Acquire(ctx context.Context) (func(), error) {
	one := map[string]int{g.host: 1}
	if err := g.l.open.take(ctx, one, nil); err != nil {
		return nil, err
	}
	g.l.r.opened(g.host)
	var once sync.Once
	return func() {
		once.Do(func() {
			g.l.r.closed(g.host)
			g.l.open.give(one)
		})
	}, nil
}
