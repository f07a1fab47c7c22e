package bridge

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/delayproxy"
	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/state"
)

// TestWindowFillsADelayedLink shows that one IMAP connection keeps many
// APPENDs in flight when the link, not the server, is the limit: over a
// 20 ms round trip to a fast in-process server its window widens well past
// the four appenders a connection used to have, which capped what was in
// flight whatever the link. Every message still arrives exactly once.
func TestWindowFillsADelayedLink(t *testing.T) {
	var msgs []pop3test.Message
	for i := range 1500 {
		body := fmt.Sprintf("Message-ID: <%d@latency.test>\r\nSubject: message %d\r\n\r\n%s\r\n", i, i, strings.Repeat("x", 500))
		msgs = append(msgs, pop3test.Message{UIDL: fmt.Sprintf("l%05d", i), Data: []byte(body)})
	}
	e := newTestEnv(t, msgs, pop3test.Config{})
	proxy, err := delayproxy.Listen(e.imap.Addr(), 10*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	j, err := state.Open(e.journal)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	pop, im := e.endpoints()
	im.Addr = proxy.Addr()
	m := &Migrator{Config: Config{Folder: folder, IMAPConns: 1, RetryDelay: time.Millisecond}, POP3: pop, IMAP: im, Journal: j, Stats: &Stats{}}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.assertExactlyOnce(e.source)
	s := m.Stats
	t.Logf("widest window %d, %.1f APPENDs in flight on average, RTT %v", s.MaxWindow.Load(), s.InFlight(), time.Duration(s.RTTNanos.Load()))
	if got := s.MaxWindow.Load(); got <= 2*initialWindow {
		t.Errorf("the window grew to %d, want more than %d on a 20 ms link", got, 2*initialWindow)
	}
	if got := s.InFlight(); got <= initialWindow {
		t.Errorf("%.1f APPENDs in flight on average, want more than %d", got, initialWindow)
	}
	if rtt := time.Duration(s.RTTNanos.Load()); rtt < 20*time.Millisecond {
		t.Errorf("measured RTT %v, want at least the proxy's 20 ms", rtt)
	}
	if got := s.AppendCount.Load(); got != int64(len(msgs)) {
		t.Errorf("AppendCount = %d, want %d", got, len(msgs))
	}
}
