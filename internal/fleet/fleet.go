// Package fleet runs many accounts at once within two limits: how many
// accounts run at a time (jobs), and how many connections are open to any
// one host, POP3 and IMAP together, retries and recovery included. The
// bridge daemon and batch run their accounts through it.
//
// Before an account runs, its whole connection budget is reserved at
// once, on every host it uses: a POP3 connection and one IMAP connection
// to append on (the session checks the folder on it first), plus the
// appenders its fair share of the cap allows. A connection is only ever
// opened within its account's reservation (bridge.Endpoint.Gate), so the
// caps cannot be exceeded.
//
// The folder index's connection, which only an account whose folder
// already holds mail opens, is not reserved: it is borrowed when it is
// dialed (Grant.Index). So that this cannot deadlock, the reservations of
// accounts that may borrow leave one slot of every host's cap free
// (indexSpare): an account waits for a borrowed slot only while holding
// its reservation, and a borrower finishes its session without waiting
// for anything else, so the spare slot always comes back. A fresh
// account, the common case of a batch, costs two connections, not three.
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
	// append on. 0 means that it only logs in (a check, a STAT): one IMAP
	// connection, and no folder index.
	Appenders int
}

// Grant is what the runner gave an account: its endpoints, whose every
// connection is admitted by the account's reservation, and how many
// connections it may append on (at least one when it asked for any).
// Index, set when the account appends, is IMAP again, but its connections
// borrow a slot of the cap when they are dialed instead of using the
// reservation: set it as the bridge.Migrator's Index.
type Grant struct {
	POP3, IMAP, Index *bridge.Endpoint
	Appenders         int
}

// indexSpare is how many slots of a host's cap the reservations of
// accounts that may borrow one for a folder index leave free.
const indexSpare = 1

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
		if n+need.keep() > r.maxConn {
			return &CapError{Host: host, Need: n + need.keep(), Cap: r.maxConn}
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
		m[HostKey(n.IMAP)]++ // a check's login, or the first appender
	}
	return m
}

// borrows reports whether the account may borrow a slot for a folder
// index.
func (n Need) borrows() bool { return n.IMAP != nil && n.Appenders > 0 }

// keep is how many slots of each host's cap the account's reservation
// leaves free.
func (n Need) keep() int {
	if n.borrows() {
		return indexSpare
	}
	return 0
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
	if need.borrows() {
		g.Index = r.borrowing(need.IMAP)
	}
	return run(ctx, g)
}

// reserve waits until the account's minimum fits on every host at once,
// takes it, and adds the appending connections its fair share allows.
func (r *Runner) reserve(ctx context.Context, need Need) (*lease, error) {
	slots := need.minimum()
	appenders := 0
	err := r.reserved.take(ctx, slots, need.keep(), func() {
		if need.borrows() {
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
// of them may take for appending, up to want: what the cap leaves beside
// the index's spare slot, but no more than a fair share of it, divided
// among the accounts that are running or waiting (at most jobs of them),
// so that the first account of a batch does not take what the next ones
// need. r.reserved.mu is held.
func (r *Runner) extra(host string, held, want int) int {
	share := (r.maxConn - indexSpare) / max(1, minInt(cap(r.jobs), int(r.inDo.Load())))
	return max(0, minInt(want, r.reserved.room(host)-indexSpare, share-held))
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
	c.Gate = &gate{r: l.r, slots: l.open, host: HostKey(ep)}
	return &c
}

// borrowing returns a copy of ep whose connections each borrow a slot of
// the cap, outside any reservation.
func (r *Runner) borrowing(ep *bridge.Endpoint) *bridge.Endpoint {
	c := *ep
	c.Gate = &gate{r: r, slots: r.reserved, host: HostKey(ep)}
	return &c
}

// end gives the reservation back. Connections the account left open
// still count against the host until they close; the bridge closes them
// all before Migrator.Run returns.
func (l *lease) end() { l.r.reserved.give(l.slots) }

// gate admits connections to one host, each taking a slot of slots for
// as long as it is open. For an account's own connections, slots is its
// lease: a connection waits only for another of the same account to
// close, never for another account. For a folder index, slots is the
// runner's, outside any reservation: it may wait for another account to
// give one back, which cannot deadlock (see indexSpare).
type gate struct {
	r     *Runner
	slots *hostSlots
	host  string
}

func (g *gate) Acquire(ctx context.Context) (func(), error) {
	one := map[string]int{g.host: 1}
	if err := g.slots.take(ctx, one, 0, nil); err != nil {
		return nil, err
	}
	g.r.opened(g.host)
	var once sync.Once
	return func() {
		once.Do(func() {
			g.r.closed(g.host)
			g.slots.give(one)
		})
	}, nil
}
