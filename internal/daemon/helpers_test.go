package daemon

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/bridge"
	"github.com/pop2imap/pop2imap/internal/imaptest"
	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/internal/testservers"
)

const (
	popPass  = "pop-Secret-4Kq"
	imapPass = "imap-Secret-8Wd"
	folder   = "Bridged"
)

// fakeClock is a Clock that moves only when the test says so. After
// registers a waiter; Advance fires the waiters that are due.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
	changed chan struct{} // closed and replaced whenever a waiter is added
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Now(), changed: make(chan struct{})}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{c.now.Add(d), ch})
	close(c.changed)
	c.changed = make(chan struct{})
	return ch
}

// Advance moves the clock on and fires every waiter that is due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
		} else {
			kept = append(kept, w)
		}
	}
	c.waiters = kept
}

// waitForWaiters blocks until n loops wait on the clock.
func (c *fakeClock) waitForWaiters(t *testing.T, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		got, changed := len(c.waiters), c.changed
		c.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("fakeClock: %d loops waiting, want %d", got, n)
		}
	}
}

// mailbox is one POP3 server and one IMAP server: one account's world.
type mailbox struct {
	t    *testing.T
	pop  *pop3test.Server
	imap *imaptest.Server
	sent [][]byte // every message added to the POP3 server
	seq  int
}

func newMailbox(t *testing.T, initial int) *mailbox {
	t.Helper()
	return newMailboxWith(t, initial, pop3test.Config{})
}

// newMailboxWith is newMailbox with a POP3 server configured by cfg; the
// credentials are set here.
func newMailboxWith(t *testing.T, initial int, cfg pop3test.Config) *mailbox {
	t.Helper()
	cfg.Username, cfg.Password = "alice", popPass
	p := testservers.Start(t, testservers.Config{POP3: cfg, IMAPUser: "alice@example.com", IMAPPassword: imapPass})
	mb := &mailbox{t: t, pop: p.POP3, imap: p.IMAP}
	mb.deliver(initial)
	return mb
}

// deliver puts n new messages on the POP3 server.
func (mb *mailbox) deliver(n int) {
	for i := 0; i < n; i++ {
		mb.seq++
		data := []byte(fmt.Sprintf("From: sender@example.org\r\nSubject: message %d\r\nMessage-ID: <m%d@example.org>\r\n\r\nbody %d\r\n.dot line\r\n", mb.seq, mb.seq, mb.seq))
		mb.pop.AddMessage(fmt.Sprintf("uidl-%d", mb.seq), data)
		mb.sent = append(mb.sent, data)
	}
}

func (mb *mailbox) account(name string) Account {
	static := func(s string) bridge.SecretFunc {
		return func(context.Context) (string, error) { return s, nil }
	}
	return Account{
		Name:    name,
		POP3:    &bridge.Endpoint{Addr: mb.pop.Addr(), Username: "alice", TLS: bridge.TLSNone, Secret: static(popPass), Timeout: 30 * time.Second},
		IMAP:    &bridge.Endpoint{Addr: mb.imap.Addr(), Username: "alice@example.com", TLS: bridge.TLSNone, Secret: static(imapPass), Timeout: 30 * time.Second},
		Bridge:  bridge.Config{Folder: folder},
		Journal: filepath.Join(mb.t.TempDir(), name+".journal"),
		Policy:  Policy{Interval: 5 * time.Minute},
	}
}

// assertForwardedOnce checks that the folder holds every message sent so
// far, byte for byte, each exactly once.
func (mb *mailbox) assertForwardedOnce() {
	mb.t.Helper()
	got := mb.imap.Messages(folder)
	want := append([][]byte(nil), mb.sent...)
	sortBytes(got)
	sortBytes(want)
	if len(got) != len(want) {
		mb.t.Fatalf("folder holds %d messages, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			mb.t.Fatalf("folder message %d differs from what was sent:\n%q\n%q", i, got[i], want[i])
		}
	}
}

// refuseLogin makes every login command (USER, PASS, APOP, AUTH) fail
// with "-ERR [code] ...", whichever mechanism the client picks.
func (mb *mailbox) refuseLogin(code string) {
	mb.pop.SetFault(pop3test.Fault{})
	for _, verb := range []string{"USER", "PASS", "APOP", "AUTH"} {
		mb.pop.AddFault(pop3test.Fault{Command: verb, ErrCode: code, ErrText: "refused by the test"})
	}
}

// logins counts the login attempts the server saw.
func (mb *mailbox) logins() int {
	return mb.commands("PASS") + mb.commands("AUTH") + mb.commands("APOP")
}

func (mb *mailbox) commands(verb string) int {
	n := 0
	for _, l := range mb.pop.Log() {
		if strings.HasPrefix(strings.ToUpper(l), verb) {
			n++
		}
	}
	return n
}

func sortBytes(b [][]byte) {
	sort.Slice(b, func(i, j int) bool { return bytes.Compare(b[i], b[j]) < 0 })
}

// newTestService returns a service on a fake clock with jitter pinned to
// the middle (factor 1), so tests can assert exact waits.
func newTestService(t *testing.T, onCycle func(Report)) (*Service, *fakeClock, *syncBuffer) {
	clock := newFakeClock()
	logs := &syncBuffer{}
	svc := New(Options{
		Logger:  slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock:   clock,
		Rand:    func() float64 { return 0.5 },
		OnCycle: onCycle,
	})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("service log:\n%s", logs.String())
		}
	})
	return svc, clock, logs
}

type syncBuffer struct {
	mu sync.Mutex
	bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.Buffer.String()
}

// scrape returns the service's /metrics and /healthz as text, and the
// health status code.
func scrape(t *testing.T, svc *Service, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	svc.Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	body, _ := io.ReadAll(rec.Body)
	return rec.Code, string(body)
}

// metricLine returns the sample line of a metric with the given labels,
// e.g. metricLine(text, `pop2imap_bridge_backoff_seconds{account="a"}`).
func metricLine(text, series string) string {
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, series+" ") {
			return l
		}
	}
	return ""
}
