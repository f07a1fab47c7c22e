package bridge

import (
	"context"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pop2imap/pop2imap/internal/delayproxy"
	"github.com/pop2imap/pop2imap/internal/pop3test"
	"github.com/pop2imap/pop2imap/internal/tcprelay"
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

// TestIMAPSetUpRunsAlongsidePOP3 shows that the IMAP login does not wait
// for the POP3 side: an IMAP connection is already open while the POP3
// server is still answering UIDL. Before, the IMAP side was dialed only
// after the listing, a round trip after each step.
func TestIMAPSetUpRunsAlongsidePOP3(t *testing.T) {
	e := newTestEnv(t, sampleMessages(t), pop3test.Config{})
	imapOpen := make(chan struct{}, 16)
	relay, err := tcprelay.Listen(e.imap.Addr(), func(client, server net.Conn) {
		imapOpen <- struct{}{}
		done := make(chan struct{}, 2)
		go func() { io.Copy(server, client); done <- struct{}{} }()
		go func() { io.Copy(client, server); done <- struct{}{} }()
		<-done
		client.Close()
		server.Close()
		<-done
	})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	var sawIMAP atomic.Bool
	e.pop.AddFault(pop3test.Fault{Command: "UIDL", Nth: 1, Hook: func() {
		// Hold UIDL until the IMAP connection comes, or long enough to
		// be sure it does not come during the listing.
		select {
		case <-imapOpen:
			sawIMAP.Store(true)
		case <-time.After(5 * time.Second):
		}
	}})
	j, err := state.Open(e.journal)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	pop, im := e.endpoints()
	im.Addr = relay.Addr()
	m := &Migrator{Config: Config{Folder: folder, RetryDelay: time.Millisecond}, POP3: pop, IMAP: im, Journal: j, Stats: &Stats{}}
	if err := m.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.assertExactlyOnce(e.source)
	if !sawIMAP.Load() {
		t.Error("no IMAP connection was opened while POP3 answered UIDL: the set-up ran in sequence")
	}
}
